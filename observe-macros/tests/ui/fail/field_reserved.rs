use observe::observed;

#[observed(fields(otel.name = "charge"))]
fn charge() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
