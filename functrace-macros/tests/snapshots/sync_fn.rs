fn f(x: u8) -> u8 {
    let __functrace_guard = ::functrace::__private::Guard::enter(
        ::core::concat!(::core::module_path!(), "::", "f"),
    );
    x + 1
}
