use observe::observed;

#[observed(gateway = "bank")]
fn charge() -> Result<u64, std::io::Error> {
    let receipt: u64 = "not a number";
    Ok(receipt)
}

fn main() {}
