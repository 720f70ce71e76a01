use functrace::trace;

#[trace(args(y))]
fn f(x: u8) -> u8 {
    x
}

fn main() {
    f(1);
}
