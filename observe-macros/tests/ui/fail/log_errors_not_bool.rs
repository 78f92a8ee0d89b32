use observe::observed;

#[observed(log_errors = "no")]
fn charge() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
