//! Sync fns: `?` and `return` still reach the end of the call.
use observe::observed;

#[observed]
fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
    if s == "zero" {
        return Ok(0);
    }
    let n: u32 = s.trim().parse()?;
    Ok(n * 2)
}

#[observed]
fn log_only(message: String) {
    let _ = message;
}

#[observed]
fn unit() -> () {}

#[observed]
fn optional(v: Option<u8>) -> Option<u8> {
    let x = v?;
    Some(x + 1)
}

#[observed]
fn never_returns_normally(fail: bool) -> u8 {
    if fail {
        panic!("boom");
    }
    1
}

#[observed]
fn mutates(v: &mut Vec<u8>) -> &mut u8 {
    v.push(1);
    &mut v[0]
}

fn main() {
    assert_eq!(parse("21").ok(), Some(42));
    assert_eq!(parse("zero").ok(), Some(0));
    log_only("hi".to_owned());
    unit();
    assert_eq!(optional(Some(1)), Some(2));
    assert_eq!(never_returns_normally(false), 1);
    let mut v = Vec::new();
    *mutates(&mut v) = 5;
    assert_eq!(v, [5]);
}
