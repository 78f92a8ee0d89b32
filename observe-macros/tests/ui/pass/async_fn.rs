//! `async fn`: `?`, early `return`, and a `Send` future.
use observe::observed;

#[derive(Debug)]
struct DbError;

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("db error")
    }
}

fn parse(id: &str) -> Result<u64, DbError> {
    id.parse().map_err(|_| DbError)
}

#[observed]
async fn load(id: &str) -> Result<u64, DbError> {
    if id.is_empty() {
        return Err(DbError);
    }
    let n = parse(id)?;
    tokio::task::yield_now().await;
    Ok(n)
}

#[observed]
async fn nothing() {}

#[observed]
async fn unit() -> () {}

#[observed]
pub(crate) async fn count(items: Vec<u8>) -> usize {
    items.len()
}

fn assert_send<T: Send>(_: T) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_send(load("1"));
    assert_eq!(load("7").await.ok(), Some(7));
    nothing().await;
    unit().await;
    assert_eq!(count(vec![1, 2]).await, 2);
}
