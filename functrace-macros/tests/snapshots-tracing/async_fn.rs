async fn f(x: u8) -> Result<u8, E> {
    static __FUNCTRACE_CALLSITE: ::functrace::__private::Callsite = ::functrace::__private::Callsite::new(
        ::core::concat!(::core::module_path!(), "::", "f"),
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
                    g(x).await?;
                    Ok(x)
                },
            ),
            ::functrace::__private::own_span(|| {
                ::functrace::__private::tracing::info_span!(
                    target : ::core::module_path!(),
                    ::core::concat!(::core::module_path!(), "::", "f")
                )
            }),
        )
        .await
}
