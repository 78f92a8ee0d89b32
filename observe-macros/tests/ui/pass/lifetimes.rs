//! Explicit and elided lifetimes, sync and async.
use observe::observed;

#[observed]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

#[observed]
fn first_word(s: &str) -> &str {
    s.split(' ').next().unwrap_or(s)
}

struct Parser<'s> {
    input: &'s str,
}

impl<'s> Parser<'s> {
    #[observed]
    fn rest(&self) -> &'s str {
        self.input
    }

    #[observed]
    async fn head<'b>(&'b self, n: usize) -> Result<&'s str, std::fmt::Error> {
        self.input.get(..n).ok_or(std::fmt::Error)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(longest("ab", "c"), "ab");
    assert_eq!(first_word("hello world"), "hello");
    let p = Parser { input: "abc" };
    assert_eq!(p.rest(), "abc");
    assert_eq!(p.head(2).await.ok(), Some("ab"));
}
