#![deny(unused_must_use)]
use observe::observed;

#[must_use = "the receipt proves the payment"]
#[observed]
fn charge() -> u64 {
    7
}

fn main() {
    charge();
}
