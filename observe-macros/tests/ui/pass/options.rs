//! Every option together, and each on its own.
use observe::observed;

#[derive(Debug)]
struct GatewayError;

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gateway error")
    }
}

impl From<tokio::time::error::Elapsed> for GatewayError {
    fn from(_: tokio::time::error::Elapsed) -> Self {
        GatewayError
    }
}

#[observed(gateway = "bank", timeout = "500ms", log_errors = false, name = "bank.charge", fields(order_id = id))]
async fn all(id: u64) -> Result<u64, GatewayError> {
    Ok(id)
}

#[observed(gateway = "bank")]
async fn gateway_only() -> Result<(), GatewayError> {
    Ok(())
}

#[observed(gateway = "bank")]
fn gateway_sync() -> Result<(), GatewayError> {
    Ok(())
}

#[observed(timeout = "2m")]
async fn minutes() -> Result<(), GatewayError> {
    Ok(())
}

#[observed(timeout = "1h")]
async fn hours() -> Result<(), std::io::Error> {
    Ok(())
}

#[observed(log_errors = true)]
fn logged() -> Result<(), GatewayError> {
    Err(GatewayError)
}

#[observed()]
fn empty_parens() {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(all(1).await.ok(), Some(1));
    assert!(gateway_only().await.is_ok());
    assert!(gateway_sync().is_ok());
    assert!(minutes().await.is_ok());
    assert!(hours().await.is_ok());
    assert!(logged().is_err());
    empty_parens();
}
