use observe::observed;

#[observed(gateway = "")]
async fn charge() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
