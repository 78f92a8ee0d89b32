//! Functions returning `impl Trait`, sync and async, and a sync fn returning
//! an `async` block (the future is what gets observed).
use observe::observed;
use std::fmt::Display;
use std::future::Future;

#[observed]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

#[observed]
fn adder(x: u32) -> impl Fn(u32) -> u32 {
    move |y| x + y
}

#[observed]
async fn label(n: u32) -> impl Display {
    format!("#{n}")
}

#[observed]
fn boxed_display(n: u32) -> Box<impl Display> {
    Box::new(n)
}

#[observed]
fn later(n: u32) -> impl Future<Output = Result<u32, std::io::Error>> {
    async move { Ok(n + 1) }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(evens(5).collect::<Vec<_>>(), [0, 2, 4]);
    assert_eq!(adder(1)(2), 3);
    assert_eq!(label(3).await.to_string(), "#3");
    assert_eq!(boxed_display(4).to_string(), "4");
    assert_eq!(later(1).await.ok(), Some(2));
}
