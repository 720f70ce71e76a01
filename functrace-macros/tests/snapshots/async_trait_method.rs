fn greet<'a>(&'a self) -> Pin<Box<dyn Future<Output = String> + Send + 'a>> {
    Box::pin(
        ::functrace::__private::Traced::new(
            ::core::concat!(::core::module_path!(), "::", "greet"),
            async move {
                let __self = self;
                let __ret: String = { hello() };
                __ret
            },
        ),
    )
}
