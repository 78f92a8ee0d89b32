use observe::observed;

#[observed(skip(card))]
fn charge(card: &str) -> Result<(), std::io::Error> {
    let _ = card;
    Ok(())
}

fn main() {}
