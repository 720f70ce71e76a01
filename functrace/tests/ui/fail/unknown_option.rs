use functrace::trace;

#[trace(verbose)]
fn f() {}

fn main() {
    f();
}
