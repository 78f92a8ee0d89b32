use observe::observed;

#[observed(gateway = "bank", timeout = "5s", gateway = "card_network")]
async fn charge() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
