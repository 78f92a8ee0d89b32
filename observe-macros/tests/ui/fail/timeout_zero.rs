use observe::observed;

#[observed(timeout = "0ms")]
async fn charge() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
