//! Compile-time behaviour of `#[observed]`: every supported function shape
//! compiles (`tests/ui/pass`), every misuse fails with one clear error
//! (`tests/ui/fail`, expected output in the committed `.stderr` files).
//!
//! Compiler output changes between releases, so the compile-fail half runs
//! only on the toolchain the `.stderr` files were written with
//! ([`STDERR_TOOLCHAIN`]); regenerate them with
//! `TRYBUILD=overwrite cargo test -p observe-macros --test observed_ui` after an upgrade.

/// `rustc --version` prefix the `.stderr` files match.
const STDERR_TOOLCHAIN: &str = "rustc 1.95.";

fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    let version = rustc_version();
    if version.starts_with(STDERR_TOOLCHAIN) {
        t.compile_fail("tests/ui/fail/*.rs");
    } else {
        eprintln!(
            "skipping tests/ui/fail: its .stderr files are for {STDERR_TOOLCHAIN}x, this is {version}"
        );
    }
}
