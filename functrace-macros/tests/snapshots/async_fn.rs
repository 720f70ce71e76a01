async fn f(x: u8) -> Result<u8, E> {
    ::functrace::__private::Traced::new(
            ::core::concat!(::core::module_path!(), "::", "f"),
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
        )
        .await
}
