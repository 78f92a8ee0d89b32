use observe::observed;

#[observed(timeout = 30)]
async fn charge() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
