use functrace::trace;

#[trace]
fn plain(x: u32) -> u32 {
    x + 1
}

#[trace]
fn borrows<'a>(v: &'a mut Vec<u8>) -> &'a mut u8 {
    v.push(0);
    v.last_mut().unwrap()
}

#[trace]
fn fallible(s: &str) -> Result<u32, std::num::ParseIntError> {
    let n = s.parse::<u32>()?;
    Ok(n)
}

#[trace]
async fn awaited(s: &str) -> Result<u32, Box<dyn std::error::Error>> {
    let n = fallible(s)?;
    if n == 0 {
        return Err("zero".into());
    }
    Ok(n)
}

#[trace]
async fn opaque() -> impl std::fmt::Display {
    7
}

#[trace]
fn diverges() -> ! {
    std::process::exit(0)
}

fn main() {
    assert_eq!(plain(1), 2);
    let mut v = Vec::new();
    *borrows(&mut v) = 3;
    assert_eq!(fallible("4"), Ok(4));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(awaited("5")).unwrap(), 5);
    assert_eq!(rt.block_on(opaque()).to_string(), "7");
    diverges();
}
