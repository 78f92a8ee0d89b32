use observe::observed;

#[derive(Debug)]
struct BankError;

#[observed(timeout = "30s")]
async fn charge() -> Result<(), BankError> {
    Ok(())
}

fn main() {}
