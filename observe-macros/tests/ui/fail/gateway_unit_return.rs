use observe::observed;

#[observed(gateway = "bank")]
fn notify_bank() -> () {}

fn main() {}
