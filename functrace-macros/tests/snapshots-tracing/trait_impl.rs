impl Display for Point {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        static __FUNCTRACE_CALLSITE: ::functrace::__private::Callsite = ::functrace::__private::Callsite::new(
            ::core::concat!(
                "<", ::core::module_path!(), "::", "Point", " as ", "Display", ">::",
                "fmt"
            ),
            ::core::module_path!(),
        );
        let __functrace_guard = ::functrace::__private::Guard::enter(
            &__FUNCTRACE_CALLSITE,
        );
        let __functrace_span = ::functrace::__private::own_span(|| {
                ::functrace::__private::tracing::info_span!(
                    target : ::core::module_path!(), ::core::concat!("<",
                    ::core::module_path!(), "::", "Point", " as ", "Display", ">::",
                    "fmt")
                )
            })
            .entered();
        write!(f, "{}", self.0)
    }
}
