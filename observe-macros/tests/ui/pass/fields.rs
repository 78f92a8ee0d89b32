//! `fields(...)` in tracing's syntax: plain, `%` Display, `?` Debug,
//! dotted names, shorthands, pseudonyms, keywords as segments.
use observe::observed;

#[derive(Debug)]
struct Order {
    id: u64,
    email: String,
}

#[observed(fields(
    order.id = %order.id,
    user = observe::pseudonym(&order.email),
    amount_cents = amount,
    debug_order = ?order,
    error.kind = "none",
    amount,
    %note,
    ?flags,
))]
fn place(order: &Order, amount: u64, note: &str, flags: (bool, bool)) -> Result<u64, String> {
    let _ = (note, flags);
    Ok(order.id + amount)
}

#[observed(fields(order_id = order.id, r#type = "card"))]
async fn pay(order: Order) -> Result<(), String> {
    drop(order);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let order = Order {
        id: 1,
        email: "a@example.com".into(),
    };
    assert_eq!(place(&order, 2, "n", (true, false)), Ok(3));
    assert_eq!(pay(order).await, Ok(()));
}
