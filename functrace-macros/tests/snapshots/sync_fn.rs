fn f(x: u8) -> u8 {
    static __FUNCTRACE_CALLSITE: ::functrace::__private::Callsite = ::functrace::__private::Callsite::new(
        ::core::concat!(::core::module_path!(), "::", "f"),
        ::core::module_path!(),
    );
    let __functrace_guard = ::functrace::__private::Guard::enter(&__FUNCTRACE_CALLSITE);
    x + 1
}
