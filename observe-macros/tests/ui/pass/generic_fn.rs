//! Generic functions: type, lifetime and const parameters, where clauses,
//! `impl Trait` arguments, generic impls.
use observe::observed;
use std::fmt::Display;

#[observed]
fn join<T: Display, const N: usize>(items: [T; N], sep: &str) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

#[observed]
fn total<I>(items: I) -> u64
where
    I: IntoIterator<Item = u64>,
{
    items.into_iter().sum()
}

#[observed]
async fn describe(x: impl Display + Send) -> Result<String, std::fmt::Error> {
    Ok(format!("<{x}>"))
}

struct Wrapper<T>(T);

impl<T: Clone + Send + Sync> Wrapper<T> {
    #[observed]
    fn get(&self) -> T {
        self.0.clone()
    }

    #[observed]
    async fn get_async(&self) -> Option<T> {
        Some(self.0.clone())
    }
}

#[observed]
fn parse_as<T: std::str::FromStr>(s: &str) -> Result<T, T::Err> {
    s.parse()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(join([1, 2, 3], ","), "1,2,3");
    assert_eq!(total(vec![1, 2]), 3);
    assert_eq!(describe(5).await.ok().as_deref(), Some("<5>"));
    assert_eq!(Wrapper(3).get(), 3);
    assert_eq!(Wrapper("x").get_async().await, Some("x"));
    assert_eq!(parse_as::<u8>("7").ok(), Some(7));
}
