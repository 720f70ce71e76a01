fn add(a: u8, b: u8) -> u8 {
    let __functrace_guard = ::functrace::__private::Guard::enter_args(
        ::core::concat!(::core::module_path!(), "::", "add"),
        ::core::format_args!("a = {:?}", a),
    );
    let __functrace_ret = ::functrace::__private::once(move || -> u8 { a + b });
    __functrace_guard.returned(::core::format_args!("= {:?}", __functrace_ret));
    __functrace_ret
}
