//! The telemetry's [`Resource`]: detected host and process attributes
//! (lowest precedence), then `OTEL_RESOURCE_ATTRIBUTES`, then the builder.
//! Detection reads `std` and the environment (no extra dependencies, no
//! `unsafe`):
//!
//! | attribute | from |
//! |---|---|
//! | `host.name` | `/proc/sys/kernel/hostname`, `/etc/hostname`, `HOSTNAME`, `COMPUTERNAME` |
//! | `host.arch` | `std::env::consts::ARCH`, in semantic-convention names (`amd64`, `arm64`, ...) |
//! | `os.type` | `std::env::consts::OS` (`linux`, `darwin`, `windows`, ...) |
//! | `process.pid` | `std::process::id()` |
//! | `process.executable.name` | the file name of `std::env::current_exe()` |
//! | `process.runtime.name` | `rustc` |

use super::env::parse_resource_attributes;
use crate::error::InitError;
use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;

/// What the builder says about the resource.
pub(super) struct Declared {
    pub(super) service_name: String,
    pub(super) service_version: Option<String>,
    pub(super) environment: Option<String>,
    pub(super) attributes: Vec<KeyValue>,
}

/// The resource, and the deployment environment (from the builder, else
/// `deployment.environment.name` or `deployment.environment` in
/// `OTEL_RESOURCE_ATTRIBUTES`).
pub(super) fn build(
    declared: Declared,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<(Resource, Option<String>), InitError> {
    let mut from_env = match var("OTEL_RESOURCE_ATTRIBUTES") {
        Some(raw) => parse_resource_attributes(&raw)?,
        None => Vec::new(),
    };
    let env_attr = |key: &str| {
        from_env
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    let environment = declared
        .environment
        .or_else(|| env_attr("deployment.environment.name"))
        .or_else(|| env_attr("deployment.environment"));
    let version = declared
        .service_version
        .or_else(|| env_attr("service.version"));
    from_env.retain(|kv| kv.key.as_str() != "service.name");
    let [hi, lo] = crate::ids::random_u64s();
    let mut builder = Resource::builder_empty()
        .with_attributes(detect(var))
        .with_attributes(from_env)
        .with_attribute(KeyValue::new("service.name", declared.service_name))
        .with_attribute(KeyValue::new(
            "service.instance.id",
            crate::hex::string(&((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes()),
        ))
        .with_attribute(KeyValue::new("telemetry.sdk.name", "observe"))
        .with_attribute(KeyValue::new("telemetry.sdk.language", "rust"))
        .with_attribute(KeyValue::new(
            "telemetry.sdk.version",
            env!("CARGO_PKG_VERSION"),
        ));
    if let Some(v) = version {
        builder = builder.with_attribute(KeyValue::new("service.version", v));
    }
    if let Some(e) = &environment {
        builder = builder.with_attribute(KeyValue::new("deployment.environment.name", e.clone()));
    }
    for kv in declared.attributes {
        builder = builder.with_attribute(kv);
    }
    Ok((builder.build(), environment))
}

/// The detected attributes (lowest precedence: `OTEL_RESOURCE_ATTRIBUTES`
/// and the builder override them).
fn detect(var: &dyn Fn(&str) -> Option<String>) -> Vec<KeyValue> {
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
