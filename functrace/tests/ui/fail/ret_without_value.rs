use functrace::trace;

#[trace(ret)]
fn f(x: u8) {
    let _ = x;
}

fn main() {
    f(1);
}
