use functrace::trace;

#[trace(skip, args)]
fn f(x: u8) -> u8 {
    x
}

fn main() {
    f(1);
}
