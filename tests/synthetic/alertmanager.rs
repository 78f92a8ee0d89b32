//! Alerting against a real Alertmanager.

use super::*;

// Alerting against a real Alertmanager.

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

struct AlertmanagerProcess {
    child: std::process::Child,
    dir: std::path::PathBuf,
    url: String,
}

impl Drop for AlertmanagerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts Alertmanager on 127.0.0.1 with a minimal config and temp storage;
/// `None` (skip) when the binary is missing, unless `CI=true`.
async fn start_alertmanager() -> Option<AlertmanagerProcess> {
    let bin = std::env::var("OBSERVE_ALERTMANAGER").unwrap_or_else(|_| ALERTMANAGER.to_owned());
    if !std::path::Path::new(&bin).exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{bin} is missing: apt-get install prometheus-alertmanager");
        }
        eprintln!("skipping: {bin} is missing (apt-get install prometheus-alertmanager)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dir = std::env::temp_dir().join(format!(
        "observe-synthetic-am-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\n  group_wait: 1h\nreceivers:\n  - name: blackhole\n",
    )
    .expect("config");
    let child = std::process::Command::new(&bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start alertmanager");
    let am = AlertmanagerProcess {
        child,
        dir,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..200 {
        if let Ok((200, _)) = http_get(&format!("{}/-/ready", am.url)).await {
            return Some(am);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("alertmanager did not become ready on {}", am.url);
}

async fn http_get(url: &str) -> Result<(u16, Vec<u8>), String> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<axum::body::Bytes>>();
    let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let res = client.get(uri).await.map_err(|e| format!("{e}"))?;
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{e}"))?
        .to_bytes();
    Ok((status, body.to_vec()))
}

/// Alerts named SyntheticCheckFailed that Alertmanager holds as active.
async fn active_alerts(am: &AlertmanagerProcess) -> Vec<Value> {
    let (status, body) = http_get(&format!("{}/api/v2/alerts", am.url))
        .await
        .expect("GET /api/v2/alerts");
    assert_eq!(status, 200);
    let all: Vec<Value> = serde_json::from_slice(&body).expect("json");
    all.into_iter()
        .filter(|a| a["labels"]["alertname"] == "SyntheticCheckFailed")
        .collect()
}

#[tokio::test]
async fn alert_fires_after_n_consecutive_failures_and_resolves_on_recovery_in_alertmanager() {
    let Some(am) = start_alertmanager().await else {
        return;
    };
    let metrics = Metrics::new();
    let ((first, second, third, firing, after_first, after_recovery, stub), _cap) =
        Harness::new("synthetic-runner")
            .run_async(async {
                let (base, stub) = start_stub().await;
                let mut runner = metrics
                    .runner(checkout(base.clone()))
                    .alert_after(2)
                    .alert_sink(Alertmanager::new(&am.url).expect("url"))
                    .alert_sink(Webhook::new(&format!("{base}/hook")).expect("url"))
                    .build()
                    .expect("config");
                stub.set_mode(PROCESSING);
                let first = runner.run_once().await;
                let after_first = (runner.state().alert_firing, active_alerts(&am).await);
                let second = runner.run_once().await;
                assert!(runner.state().alert_firing);
                let firing = active_alerts(&am).await;
                stub.set_mode(HEALTHY);
                let third = runner.run_once().await;
                let after_recovery = (runner.state().alert_firing, active_alerts(&am).await);
                (
                    first,
                    second,
                    third,
                    firing,
                    after_first,
                    after_recovery,
                    stub,
                )
            })
            .await;

    assert!(!first.is_success());
    assert_eq!(after_first, (false, Vec::new()), "not after 1 failure");
    assert!(!second.is_success());
    assert_eq!(firing.len(), 1, "{firing:?}");
    let alert = &firing[0];
    assert_eq!(
        alert["labels"],
        json!({
            "alertname": "SyntheticCheckFailed",
            "flow": "checkout",
            "region": "eu-west-1",
            "severity": "critical",
            "reason": "failing",
        })
    );
    assert_eq!(alert["status"]["state"], "active");
    let trace_id = second.trace_id.clone().expect("trace");
    assert_eq!(
        alert["annotations"],
        json!({
            "summary": "Synthetic flow checkout is failing in eu-west-1",
            "description": format!(
                "2 consecutive failed runs of the synthetic flow checkout from eu-west-1 (alerting after 2). \
                 Last failure at step pay: expected status \"success\", got \"processing\" (trace {trace_id})"
            ),
            "step": "pay",
            "failure": "expected status \"success\", got \"processing\"",
            "consecutive_failures": "2",
            "trace_id": trace_id,
        })
    );
    assert!(third.is_success());
    assert_eq!(after_recovery, (false, Vec::new()), "resolved");

    // The webhook got the same alert, firing then resolved.
    let hooks = stub.hooks.lock().expect("lock").clone();
    let statuses: Vec<&Value> = hooks.iter().map(|h| &h["alerts"][0]["status"]).collect();
    assert_eq!(statuses, [&json!("firing"), &json!("resolved")]);
    assert_eq!(hooks[0]["alerts"][0]["labels"], alert["labels"]);
    assert_eq!(
        hooks[0]["alerts"][0]["startsAt"], hooks[1]["alerts"][0]["startsAt"],
        "the resolution names the same alert"
    );
}
