use observe::observed;

#[observed(timeout = "30 seconds")]
async fn charge() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
