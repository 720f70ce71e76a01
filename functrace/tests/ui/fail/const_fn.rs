use functrace::trace;

#[trace]
const fn f() -> u8 {
    1
}

fn main() {
    f();
}
