use observe::observed;

#[observed(name = format!("charge"))]
fn charge() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
