use functrace::trace;

#[trace(ret, ret)]
fn f() -> u8 {
    1
}

fn main() {
    f();
}
