async fn get(id: u8) -> Result<u8, E> {
    static __FUNCTRACE_CALLSITE: ::functrace::__private::Callsite = ::functrace::__private::Callsite::new(
        ::core::concat!(::core::module_path!(), "::", "get"),
        ::core::module_path!(),
    );
    ::functrace::__private::tracing::Instrument::instrument(
            ::functrace::__private::Traced::new(
                    &__FUNCTRACE_CALLSITE,
                    async move {
                        #[allow(
                            unreachable_code,
                            clippy::diverging_sub_expression,
                            clippy::let_unit_value,
                            clippy::empty_loop
                        )]
                        if false {
                            let __functrace_fake_return: Result<u8, E> = loop {};
                            return __functrace_fake_return;
                        }
                        find(id)
                    },
                )
                .with_err(|ret| match ret {
                    ::core::result::Result::Err(err) => {
                        ::core::option::Option::Some(::std::format!("{:?}", err))
                    }
                    _ => ::core::option::Option::None,
                }),
            ::functrace::__private::own_span(|| {
                ::functrace::__private::tracing::info_span!(
                    target : ::core::module_path!(),
                    ::core::concat!(::core::module_path!(), "::", "get")
                )
            }),
        )
        .await
}
