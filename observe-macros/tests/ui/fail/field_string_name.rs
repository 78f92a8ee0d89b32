use observe::observed;

#[observed(fields("order id" = order_id))]
fn charge(order_id: u64) -> Result<(), std::io::Error> {
    let _ = order_id;
    Ok(())
}

fn main() {}
