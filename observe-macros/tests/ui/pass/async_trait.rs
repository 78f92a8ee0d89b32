//! Methods of `#[async_trait]` impls: the boxed future is observed, with
//! fields, `gateway` and `timeout`.
use async_trait::async_trait;
use observe::observed;

#[derive(Debug)]
enum BankError {
    Declined,
    Timeout,
}

impl std::fmt::Display for BankError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl From<tokio::time::error::Elapsed> for BankError {
    fn from(_: tokio::time::error::Elapsed) -> Self {
        BankError::Timeout
    }
}

#[async_trait]
trait Bank {
    async fn charge(&self, amount_cents: u64) -> Result<String, BankError>;
    async fn ping(&self);
    async fn name(&self) -> &str;
}

struct Acme {
    name: String,
}

#[async_trait]
impl Bank for Acme {
    #[observed(gateway = "acme", timeout = "30s", fields(amount_cents, bank = %self.name))]
    async fn charge(&self, amount_cents: u64) -> Result<String, BankError> {
        if amount_cents == 0 {
            return Err(BankError::Declined);
        }
        tokio::task::yield_now().await;
        Ok(format!("rcpt_{amount_cents}"))
    }

    #[observed]
    async fn ping(&self) {}

    #[observed]
    async fn name(&self) -> &str {
        &self.name
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let bank: Box<dyn Bank + Send + Sync> = Box::new(Acme {
        name: "acme".into(),
    });
    assert_eq!(bank.charge(5).await.ok().as_deref(), Some("rcpt_5"));
    assert!(matches!(bank.charge(0).await, Err(BankError::Declined)));
    bank.ping().await;
    assert_eq!(bank.name().await, "acme");
}
