fn add(a: u8, b: u8) -> u8 {
    static __FUNCTRACE_CALLSITE: ::functrace::__private::Callsite = ::functrace::__private::Callsite::new(
        ::core::concat!(::core::module_path!(), "::", "add"),
        ::core::module_path!(),
    );
    let __functrace_guard = ::functrace::__private::Guard::enter_args(
        &__FUNCTRACE_CALLSITE,
        ::core::format_args!("a = {:?}", a),
    );
    let __functrace_span = ::functrace::__private::own_span(|| {
            ::functrace::__private::tracing::info_span!(
                target : ::core::module_path!(), ::core::concat!(::core::module_path!(),
                "::", "add")
            )
        })
        .entered();
    let __functrace_ret = ::functrace::__private::once(move || -> u8 { a + b });
    __functrace_guard.returned(::core::format_args!("= {:?}", __functrace_ret));
    __functrace_ret
}
