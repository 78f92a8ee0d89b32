use observe::observed;

#[observed(retries = 3)]
async fn charge() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
