use observe::observed;

const BANK: &str = "bank";

#[observed(gateway = BANK)]
async fn charge() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
