impl<T> Stack<T> {
    fn push(&mut self, t: T) {
        let __functrace_guard = ::functrace::__private::Guard::enter(
            ::core::concat!(::core::module_path!(), "::", "Stack<T>", "::", "push"),
        );
        self.0.push(t)
    }
    const fn new() -> Self {
        Stack(Vec::new())
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}
