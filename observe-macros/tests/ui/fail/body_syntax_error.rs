use observe::observed;

#[observed]
fn charge() -> Result<u64, std::io::Error> {
    let receipt = ;
    Ok(receipt)
}

fn main() {}
