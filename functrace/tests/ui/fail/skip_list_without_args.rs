use functrace::trace;

#[trace(skip(x))]
fn f(x: u8) -> u8 {
    x
}

fn main() {
    f(1);
}
