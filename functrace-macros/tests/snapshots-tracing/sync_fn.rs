fn f(x: u8) -> u8 {
    static __FUNCTRACE_CALLSITE: ::functrace::__private::Callsite = ::functrace::__private::Callsite::new(
        ::core::concat!(::core::module_path!(), "::", "f"),
        ::core::module_path!(),
    );
    let __functrace_guard = ::functrace::__private::Guard::enter(&__FUNCTRACE_CALLSITE);
    let __functrace_span = ::functrace::__private::own_span(|| {
            ::functrace::__private::tracing::info_span!(
                target : ::core::module_path!(), ::core::concat!(::core::module_path!(),
                "::", "f")
            )
        })
        .entered();
    x + 1
}
