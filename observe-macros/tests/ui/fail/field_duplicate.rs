use observe::observed;

#[observed(fields(order_id = order_id, amount_cents = 5, order_id = 7))]
fn charge(order_id: u64) -> Result<(), std::io::Error> {
    let _ = order_id;
    Ok(())
}

fn main() {}
