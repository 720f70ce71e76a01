impl Display for Point {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let __functrace_guard = ::functrace::__private::Guard::enter(
            ::core::concat!(
                "<", ::core::module_path!(), "::", "Point", " as ", "Display", ">::",
                "fmt"
            ),
        );
        write!(f, "{}", self.0)
    }
}
