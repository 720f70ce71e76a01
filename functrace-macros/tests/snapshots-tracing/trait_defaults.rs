trait Shape {
    fn area(&self) -> f64;
    fn twice(&self) -> f64 {
        static __FUNCTRACE_CALLSITE: ::functrace::__private::Callsite = ::functrace::__private::Callsite::new(
            ::core::concat!(::core::module_path!(), "::", "Shape", "::", "twice"),
            ::core::module_path!(),
        );
        let __functrace_guard = ::functrace::__private::Guard::enter(
            &__FUNCTRACE_CALLSITE,
        );
        let __functrace_span = ::functrace::__private::own_span(|| {
                ::functrace::__private::tracing::info_span!(
                    target : ::core::module_path!(),
                    ::core::concat!(::core::module_path!(), "::", "Shape", "::", "twice")
                )
            })
            .entered();
        2.0 * self.area()
    }
}
