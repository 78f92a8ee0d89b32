use observe::observed;

#[observed(timeout = "30s")]
fn charge() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
