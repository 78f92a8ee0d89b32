//! Host and process resource attributes, read from `std` and the
//! environment (no extra dependencies, no `unsafe`).
//!
//! | attribute | from |
//! |---|---|
//! | `host.name` | `/proc/sys/kernel/hostname`, `/etc/hostname`, `HOSTNAME`, `COMPUTERNAME` |
//! | `host.arch` | `std::env::consts::ARCH`, in semantic-convention names (`amd64`, `arm64`, ...) |
//! | `os.type` | `std::env::consts::OS` (`linux`, `darwin`, `windows`, ...) |
//! | `process.pid` | `std::process::id()` |
//! | `process.executable.name` | the file name of `std::env::current_exe()` |
//! | `process.runtime.name` | `rustc` |

use opentelemetry::KeyValue;

/// The detected attributes (lowest precedence: `OTEL_RESOURCE_ATTRIBUTES`
/// and the builder override them).
pub(crate) fn detect(var: &dyn Fn(&str) -> Option<String>) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(6);
    if let Some(h) = host_name(var) {
        out.push(KeyValue::new("host.name", h));
    }
    out.push(KeyValue::new(
        "host.arch",
        host_arch(std::env::consts::ARCH),
    ));
    out.push(KeyValue::new("os.type", os_type(std::env::consts::OS)));
    out.push(KeyValue::new("process.pid", i64::from(std::process::id())));
    if let Some(name) = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    {
        out.push(KeyValue::new("process.executable.name", name));
    }
    out.push(KeyValue::new("process.runtime.name", "rustc"));
    out
}

fn host_name(var: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .or_else(|| var("HOSTNAME"))
        .or_else(|| var("COMPUTERNAME"))
        .filter(|s| !s.is_empty() && s.len() <= 255)
}

/// `std::env::consts::ARCH` in the semantic conventions' `host.arch` values.
fn host_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm32",
        "powerpc" => "ppc32",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        other => other,
    }
}

/// `std::env::consts::OS` in the semantic conventions' `os.type` values.
fn os_type(os: &str) -> &str {
    match os {
        "macos" | "ios" => "darwin",
        "illumos" => "illumos",
        "solaris" => "solaris",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_semantic_conventions() {
        assert_eq!(host_arch("x86_64"), "amd64");
        assert_eq!(host_arch("aarch64"), "arm64");
        assert_eq!(os_type("macos"), "darwin");
        assert_eq!(os_type("linux"), "linux");
        let kvs = detect(&|_| None);
        let keys: Vec<&str> = kvs.iter().map(|kv| kv.key.as_str()).collect();
        for k in [
            "host.arch",
            "os.type",
            "process.pid",
            "process.executable.name",
            "process.runtime.name",
        ] {
            assert!(keys.contains(&k), "{k} in {keys:?}");
        }
    }
}
