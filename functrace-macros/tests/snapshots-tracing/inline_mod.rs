mod m {
    fn f() {
        static __FUNCTRACE_CALLSITE: my::functrace::__private::Callsite = my::functrace::__private::Callsite::new(
            ::core::concat!(::core::module_path!(), "::", "f"),
            ::core::module_path!(),
        );
        let __functrace_guard = my::functrace::__private::Guard::enter(
            &__FUNCTRACE_CALLSITE,
        );
        let __functrace_span = my::functrace::__private::own_span(|| {
                my::functrace::__private::tracing::info_span!(
                    target : ::core::module_path!(),
                    ::core::concat!(::core::module_path!(), "::", "f")
                )
            })
            .entered();
    }
    extern "C" {
        fn abs(x: i32) -> i32;
    }
    mod n {
        fn g() -> u8 {
            static __FUNCTRACE_CALLSITE: my::functrace::__private::Callsite = my::functrace::__private::Callsite::new(
                ::core::concat!(::core::module_path!(), "::", "g"),
                ::core::module_path!(),
            );
            let __functrace_guard = my::functrace::__private::Guard::enter(
                &__FUNCTRACE_CALLSITE,
            );
            let __functrace_span = my::functrace::__private::own_span(|| {
                    my::functrace::__private::tracing::info_span!(
                        target : ::core::module_path!(),
                        ::core::concat!(::core::module_path!(), "::", "g")
                    )
                })
                .entered();
            let __functrace_ret = my::functrace::__private::once(move || -> u8 { 1 });
            __functrace_guard.returned(::core::format_args!("= {:?}", __functrace_ret));
            __functrace_ret
        }
    }
}
