//! Docs, `#[must_use]`, visibility and other attributes stay on the function:
//! this file denies missing docs and unused results, and compiles.
#![deny(missing_docs, unused_must_use)]
//! Attributes test.

use observe::observed;

/// A documented, public, must-use function.
#[must_use = "the total is the point"]
#[observed]
#[inline]
pub fn total(a: u32, b: u32) -> u32 {
    a + b
}

/// Attributes below `#[observed]` work as well.
#[observed]
#[must_use]
#[allow(clippy::needless_return)]
pub async fn fetch() -> Result<u32, std::io::Error> {
    return Ok(1);
}

#[cfg(any())]
#[observed]
fn compiled_out() -> u32 {
    this_does_not_exist()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let _ = total(1, 2);
    let _ = fetch().await;
}
