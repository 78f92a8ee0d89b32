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
//! | `process.runtime.version`, `process.runtime.description` | the compiler that built the service (`1.95.0`; `rustc 1.95.0 (…)`) |
//! | `service.instance.id` | random, drawn once per process (the same for every telemetry the process builds) |
//! | `k8s.pod.name`, `k8s.pod.uid`, `k8s.namespace.name`, `k8s.node.name` | `K8S_POD_NAME`, `K8S_POD_UID`, `K8S_NAMESPACE_NAME`, `K8S_NODE_NAME` (set by a Deployment through the downward API, docs/deploy.md) |
//!
//! The one resource goes on every signal (spans, log records, metrics).

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
    let mut builder = Resource::builder_empty()
        .with_attributes(detect(var))
        .with_attributes(from_env)
        .with_attribute(KeyValue::new("service.name", declared.service_name))
        .with_attribute(KeyValue::new("service.instance.id", instance_id()))
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
    if let Some(v) = option_env!("OBSERVE_RUSTC_VERSION") {
        out.push(KeyValue::new("process.runtime.version", v));
    }
    if let Some(d) = option_env!("OBSERVE_RUSTC_DESCRIPTION") {
        out.push(KeyValue::new("process.runtime.description", d));
    }
    for (var_name, key) in K8S {
        if let Some(v) = var(var_name).map(|v| v.trim().to_owned()) {
            if !v.is_empty() && v.len() <= 253 {
                out.push(KeyValue::new(key, v));
            }
        }
    }
    out
}

/// The downward-API variables a Deployment sets (docs/deploy.md), and
/// their semantic-convention attributes.
const K8S: [(&str, &str); 4] = [
    ("K8S_POD_NAME", "k8s.pod.name"),
    ("K8S_POD_UID", "k8s.pod.uid"),
    ("K8S_NAMESPACE_NAME", "k8s.namespace.name"),
    ("K8S_NODE_NAME", "k8s.node.name"),
];

/// This process's `service.instance.id`: 32 hex digits, drawn once.
fn instance_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let [hi, lo] = crate::ids::random_u64s();
        crate::hex::string(&((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes())
    })
    .clone()
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

    fn declared() -> Declared {
        Declared {
            service_name: "checkout".into(),
            service_version: None,
            environment: None,
            attributes: Vec::new(),
        }
    }

    fn built(vars: &'static [(&'static str, &'static str)]) -> Vec<(String, String)> {
        let var = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        };
        let (r, _) = build(declared(), &var).expect("valid");
        let mut kvs: Vec<(String, String)> = r
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        kvs.sort();
        kvs
    }

    fn get<'a>(kvs: &'a [(String, String)], key: &str) -> Option<&'a str> {
        kvs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn kubernetes_attributes_come_from_the_downward_api_variables() {
        let kvs = built(&[
            ("K8S_POD_NAME", "checkout-7d9f8b6c5-x2x4q"),
            ("K8S_POD_UID", "3c0f7b3e-5d1a-4d6e-9a43-0c1f2e3d4b5a"),
            ("K8S_NAMESPACE_NAME", " shop "),
            ("K8S_NODE_NAME", "node-3"),
        ]);
        assert_eq!(get(&kvs, "k8s.pod.name"), Some("checkout-7d9f8b6c5-x2x4q"));
        assert_eq!(
            get(&kvs, "k8s.pod.uid"),
            Some("3c0f7b3e-5d1a-4d6e-9a43-0c1f2e3d4b5a")
        );
        assert_eq!(get(&kvs, "k8s.namespace.name"), Some("shop"));
        assert_eq!(get(&kvs, "k8s.node.name"), Some("node-3"));
        // Outside Kubernetes: none of them.
        let kvs = built(&[("K8S_NODE_NAME", "")]);
        assert!(kvs.iter().all(|(k, _)| !k.starts_with("k8s.")), "{kvs:?}");
    }

    #[test]
    fn otel_resource_attributes_override_what_is_detected() {
        let kvs = built(&[
            ("K8S_POD_NAME", "from-downward-api"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "k8s.pod.name=from-otel,host.name=web-1,k8s.cluster.name=prod-eu",
            ),
        ]);
        assert_eq!(get(&kvs, "k8s.pod.name"), Some("from-otel"));
        assert_eq!(get(&kvs, "host.name"), Some("web-1"));
        assert_eq!(get(&kvs, "k8s.cluster.name"), Some("prod-eu"));
    }

    #[test]
    fn instance_id_is_stable_per_process() {
        let a = built(&[]);
        let b = built(&[]);
        let id = get(&a, "service.instance.id").expect("instance id");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert_eq!(get(&b, "service.instance.id"), Some(id));
    }

    #[test]
    fn process_attributes_are_this_process() {
        let kvs = built(&[]);
        assert_eq!(
            get(&kvs, "process.pid"),
            Some(std::process::id().to_string().as_str())
        );
        let exe = std::env::current_exe().expect("exe");
        assert_eq!(
            get(&kvs, "process.executable.name"),
            exe.file_name().and_then(|n| n.to_str())
        );
        let host = host_name(&|_| None);
        assert!(host.is_some());
        assert_eq!(get(&kvs, "host.name"), host.as_deref());
    }

    #[test]
    fn runtime_is_the_compiler_that_built_the_service() {
        let kvs = built(&[]);
        let out = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .expect("rustc on PATH");
        let description = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let version = description.split_whitespace().nth(1).expect("version");
        assert_eq!(get(&kvs, "process.runtime.name"), Some("rustc"));
        assert_eq!(get(&kvs, "process.runtime.version"), Some(version));
        assert_eq!(
            get(&kvs, "process.runtime.description"),
            Some(description.as_str())
        );
    }
}
