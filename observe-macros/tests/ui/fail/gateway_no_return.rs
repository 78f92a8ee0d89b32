use observe::observed;

#[observed(gateway = "bank")]
async fn notify_bank() {}

fn main() {}
