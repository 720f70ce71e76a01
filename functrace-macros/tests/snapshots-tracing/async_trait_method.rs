fn greet<'a>(&'a self) -> Pin<Box<dyn Future<Output = String> + Send + 'a>> {
    static __FUNCTRACE_CALLSITE: ::functrace::__private::Callsite = ::functrace::__private::Callsite::new(
        ::core::concat!(::core::module_path!(), "::", "greet"),
        ::core::module_path!(),
    );
    Box::pin(
        ::functrace::__private::tracing::Instrument::instrument(
            ::functrace::__private::Traced::new(
                &__FUNCTRACE_CALLSITE,
                async move {
                    let __self = self;
                    let __ret: String = { hello() };
                    __ret
                },
            ),
            ::functrace::__private::own_span(|| {
                ::functrace::__private::tracing::info_span!(
                    target : ::core::module_path!(),
                    ::core::concat!(::core::module_path!(), "::", "greet")
                )
            }),
        ),
    )
}
