impl<T> Stack<T> {
    fn push(&mut self, t: T) {
        static __FUNCTRACE_CALLSITE: ::functrace::__private::Callsite = ::functrace::__private::Callsite::new(
            ::core::concat!(::core::module_path!(), "::", "Stack<T>", "::", "push"),
            ::core::module_path!(),
        );
        let __functrace_guard = ::functrace::__private::Guard::enter(
            &__FUNCTRACE_CALLSITE,
        );
        let __functrace_span = ::functrace::__private::own_span(|| {
                ::functrace::__private::tracing::info_span!(
                    target : ::core::module_path!(),
                    ::core::concat!(::core::module_path!(), "::", "Stack<T>", "::",
                    "push")
                )
            })
            .entered();
        self.0.push(t)
    }
    const fn new() -> Self {
        Stack(Vec::new())
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}
