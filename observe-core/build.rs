//! Records the compiler's version for the `process.runtime.version` and
//! `process.runtime.description` resource attributes.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(rustc).arg("--version").output();
    if let Ok(out) = out {
        if out.status.success() {
            let description = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            // "rustc 1.95.0 (59807616e 2026-04-14)" -> "1.95.0"
            if let Some(version) = description.split_whitespace().nth(1) {
                println!("cargo:rustc-env=OBSERVE_RUSTC_VERSION={version}");
                println!("cargo:rustc-env=OBSERVE_RUSTC_DESCRIPTION={description}");
            }
        }
    }
}
