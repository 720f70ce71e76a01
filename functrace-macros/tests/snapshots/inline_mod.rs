mod m {
    fn f() {
        let __functrace_guard = my::functrace::__private::Guard::enter(
            ::core::concat!(::core::module_path!(), "::", "f"),
        );
    }
    extern "C" {
        fn abs(x: i32) -> i32;
    }
    mod n {
        fn g() -> u8 {
            let __functrace_guard = my::functrace::__private::Guard::enter(
                ::core::concat!(::core::module_path!(), "::", "g"),
            );
            let __functrace_ret = my::functrace::__private::once(move || -> u8 { 1 });
            __functrace_guard.returned(::core::format_args!("= {:?}", __functrace_ret));
            __functrace_ret
        }
    }
}
