use functrace::trace;

#[trace(args(x), skip(x))]
fn f(x: u8) -> u8 {
    x
}

fn main() {
    f(1);
}
