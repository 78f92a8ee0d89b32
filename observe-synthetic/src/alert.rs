//! Direct alert delivery: Alertmanager's API v2 and a generic JSON webhook.
//!
//! The runner fires `SyntheticCheckFailed` after N consecutive failed runs,
//! re-sends it on each further failed run (so Alertmanager keeps it active),
//! and resolves it on the first successful run by sending it again with
//! `endsAt` = now. A delivery that fails is logged and retried on the next run.

use super::http::{default_transport, Http};
use super::report::{BoxFuture, ConfigError, Failure, HttpError};
use observe_alerts::names::alert::SYNTHETIC_CHECK_FAILED;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Deadline of one delivery.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether an alert is firing or resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertStatus {
    /// The flow is failing.
    Firing,
    /// The flow recovered.
    Resolved,
}

impl AlertStatus {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One alert, in Alertmanager's model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Firing or resolved.
    pub status: AlertStatus,
    /// `alertname`, `flow`, `region`, `severity`, `reason`: the alert's identity.
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, `step`, `failure`, `trace_id`, `consecutive_failures`.
    pub annotations: BTreeMap<String, String>,
    /// Start of the failing streak.
    pub starts_at: SystemTime,
    /// When a firing alert expires unless re-sent; when a resolved alert ended.
    pub ends_at: SystemTime,
}

fn rfc3339(t: SystemTime) -> String {
    observe_core::rfc3339_micros(t)
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

impl Alert {
    /// The alert as Alertmanager's API v2 `postableAlert`.
    pub fn to_alertmanager_json(&self) -> Value {
        json!({
            "labels": string_map(&self.labels),
            "annotations": string_map(&self.annotations),
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
        })
    }
}

/// Why an alert was not delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// The request failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The receiver answered with an error status.
    #[error("{url} answered {status}: {body}")]
    Rejected {
        /// The URL posted to.
        url: String,
        /// Its status code.
        status: u16,
        /// The start of its answer.
        body: String,
    },
    /// No answer within [`DELIVERY_TIMEOUT`].
    #[error("{sink}: no answer within {timeout:?}")]
    Timeout {
        /// The sink's name.
        sink: String,
        /// The deadline.
        timeout: Duration,
    },
}

/// Where alerts go.
pub trait AlertSink: Send + Sync + 'static {
    /// A short name for log lines (`alertmanager`, `webhook`).
    fn name(&self) -> &str;
    /// Delivers one alert. Called from the runner's task; may take up to
    /// [`DELIVERY_TIMEOUT`] (the runner enforces it).
    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), AlertError>>;
}

async fn post_json(http: &Http, url: &str, body: &Value) -> Result<(), AlertError> {
    let res = http.post(url).json(body).send().await?;
    if res.status().is_success() {
        Ok(())
    } else {
        let mut text = res.text().into_owned();
        if text.len() > 200 {
            let mut end = 200;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        Err(AlertError::Rejected {
            url: url.to_owned(),
            status: res.status().as_u16(),
            body: text,
        })
    }
}

fn check_url(url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim_end_matches('/');
    match trimmed.parse::<http::Uri>() {
        Ok(u) if u.host().is_some() && u.scheme().is_some() => Ok(trimmed.to_owned()),
        _ => Err(ConfigError::InvalidUrl {
            url: url.to_owned(),
        }),
    }
}

/// Sends alerts to Alertmanager: `POST <base>/api/v2/alerts`.
///
/// ```
/// let am = observe_synthetic::Alertmanager::new("http://127.0.0.1:9093")?;
/// # Ok::<(), observe_synthetic::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Alertmanager {
    url: String,
    http: Http,
}

impl Alertmanager {
    /// Alertmanager at `base_url` (`http://host:9093`, plain HTTP).
    pub fn new(base_url: &str) -> Result<Self, ConfigError> {
        Ok(Alertmanager {
            url: format!("{}/api/v2/alerts", check_url(base_url)?),
            http: Http::new(default_transport()(), false),
        })
    }
}

impl AlertSink for Alertmanager {
    fn name(&self) -> &str {
        "alertmanager"
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), AlertError>> {
        Box::pin(async move {
            post_json(
                &self.http,
                &self.url,
                &Value::Array(vec![alert.to_alertmanager_json()]),
            )
            .await
        })
    }
}

/// Sends alerts to any URL as JSON, in the shape of Alertmanager's webhook
/// payload (`version` 4, `status`, `commonLabels`, `commonAnnotations`,
/// `alerts`), so receivers written for Alertmanager accept it.
#[derive(Debug)]
pub struct Webhook {
    url: String,
    http: Http,
}

impl Webhook {
    /// A webhook at `url` (plain HTTP).
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        Ok(Webhook {
            url: check_url(url)?,
            http: Http::new(default_transport()(), false),
        })
    }

    /// The JSON body posted for `alert`.
    pub fn payload(alert: &Alert) -> Value {
        let mut a = alert.to_alertmanager_json();
        if let Value::Object(m) = &mut a {
            m.insert("status".to_owned(), alert.status.as_str().into());
        }
        json!({
            "version": "4",
            "status": alert.status.as_str(),
            "receiver": "observe-synthetic",
            "commonLabels": string_map(&alert.labels),
            "commonAnnotations": string_map(&alert.annotations),
            "alerts": [a],
        })
    }
}

impl AlertSink for Webhook {
    fn name(&self) -> &str {
        "webhook"
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), AlertError>> {
        Box::pin(async move { post_json(&self.http, &self.url, &Webhook::payload(alert)).await })
    }
}

/// The runner's alert state: fires after N consecutive failures, resolves on recovery.
pub(crate) struct Alerting {
    pub(crate) sinks: Vec<Box<dyn AlertSink>>,
    pub(crate) after: u32,
    pub(crate) severity: String,
    /// How long a firing alert stays active in Alertmanager unless re-sent.
    pub(crate) expiry: Duration,
    streak_start: Option<SystemTime>,
    firing: Option<Alert>,
    /// A resolution not yet delivered to every sink.
    unresolved: Option<Alert>,
}

impl Alerting {
    pub(crate) fn new(
        sinks: Vec<Box<dyn AlertSink>>,
        after: u32,
        severity: String,
        expiry: Duration,
    ) -> Self {
        Alerting {
            sinks,
            after,
            severity,
            expiry,
            streak_start: None,
            firing: None,
            unresolved: None,
        }
    }

    pub(crate) fn is_firing(&self) -> bool {
        self.firing.is_some()
    }

    fn labels(&self, flow: &str, region: &str) -> BTreeMap<String, String> {
        [
            ("alertname", SYNTHETIC_CHECK_FAILED),
            ("flow", flow),
            ("region", region),
            ("severity", self.severity.as_str()),
            // Same identity as the generated Prometheus rule's alert, so
            // Alertmanager merges the two paths into one notification.
            ("reason", "failing"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Updates the state after a run and returns the alert to deliver, if any.
    pub(crate) fn after_run(
        &mut self,
        flow: &str,
        region: &str,
        started: SystemTime,
        consecutive: u32,
        failure: Option<&Failure>,
        trace_id: Option<&str>,
    ) -> Option<Alert> {
        let now = SystemTime::now();
        match failure {
            None => {
                self.streak_start = None;
                if let Some(mut a) = self.firing.take() {
                    a.status = AlertStatus::Resolved;
                    a.ends_at = now;
                    self.unresolved = Some(a);
                }
                self.unresolved.clone()
            }
            Some(f) => {
                let streak_start = *self.streak_start.get_or_insert(started);
                if consecutive < self.after {
                    return None;
                }
                self.unresolved = None;
                let runs = if consecutive == 1 { "run" } else { "runs" };
                let mut annotations = BTreeMap::new();
                annotations.insert(
                    "summary".to_owned(),
                    format!("Synthetic flow {flow} is failing in {region}"),
                );
                annotations.insert(
                    "description".to_owned(),
                    format!(
                        "{consecutive} consecutive failed {runs} of the synthetic flow {flow} from {region} \
                         (alerting after {}). Last failure at step {}: {}{}",
                        self.after,
                        f.step,
                        f.reason,
                        trace_id.map(|t| format!(" (trace {t})")).unwrap_or_default()
                    ),
                );
                annotations.insert("step".to_owned(), f.step.to_string());
                annotations.insert("failure".to_owned(), f.reason.clone());
                annotations.insert("consecutive_failures".to_owned(), consecutive.to_string());
                if let Some(t) = trace_id {
                    annotations.insert("trace_id".to_owned(), t.to_owned());
                }
                let alert = Alert {
                    status: AlertStatus::Firing,
                    labels: self.labels(flow, region),
                    annotations,
                    starts_at: streak_start,
                    ends_at: now + self.expiry,
                };
                self.firing = Some(alert.clone());
                Some(alert)
            }
        }
    }

    /// Delivers `alert` to every sink; returns whether all accepted it.
    pub(crate) async fn deliver(&mut self, alert: &Alert) -> bool {
        let mut all = true;
        let label = |k: &str| alert.labels.get(k).map_or("", String::as_str);
        let (flow, region) = (label("flow"), label("region"));
        for sink in &self.sinks {
            let res = match tokio::time::timeout(DELIVERY_TIMEOUT, sink.send(alert)).await {
                Ok(r) => r,
                Err(_) => Err(AlertError::Timeout {
                    sink: sink.name().to_owned(),
                    timeout: DELIVERY_TIMEOUT,
                }),
            };
            match res {
                Ok(()) => observe_core::event!(
                    tracing::Level::INFO,
                    "synthetic_alert_sent",
                    flow,
                    region,
                    sink = sink.name(),
                    status = alert.status.as_str(),
                ),
                Err(e) => {
                    all = false;
                    observe_core::event!(tracing::Level::WARN,
                        "synthetic_alert_delivery_failed",
                        flow,
                        region,
                        sink = sink.name(),
                        status = alert.status.as_str(),
                        error = %e,
                    );
                }
            }
        }
        if all && alert.status == AlertStatus::Resolved {
            self.unresolved = None;
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StepOutcome;
    use std::borrow::Cow;

    fn failure() -> Failure {
        Failure {
            step: Cow::Borrowed("pay"),
            outcome: StepOutcome::Failure,
            reason: r#"expected status "success", got "processing""#.to_owned(),
            assertion: None,
        }
    }

    #[test]
    fn fires_after_n_and_resolves_once() {
        let mut a = Alerting::new(Vec::new(), 2, "critical".into(), Duration::from_secs(240));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let f = failure();
        assert_eq!(a.after_run("checkout", "eu", t0, 1, Some(&f), None), None);
        let t1 = t0 + Duration::from_secs(60);
        let fired = a
            .after_run("checkout", "eu", t1, 2, Some(&f), Some("abc"))
            .expect("fires at 2");
        assert_eq!(fired.status, AlertStatus::Firing);
        assert_eq!(fired.starts_at, t0);
        assert_eq!(fired.labels["alertname"], "SyntheticCheckFailed");
        assert_eq!(
            fired.annotations["description"],
            "2 consecutive failed runs of the synthetic flow checkout from eu (alerting after 2). \
             Last failure at step pay: expected status \"success\", got \"processing\" (trace abc)"
        );
        let resolved = a
            .after_run("checkout", "eu", t1, 0, None, None)
            .expect("resolves");
        assert_eq!(resolved.status, AlertStatus::Resolved);
        assert_eq!(resolved.starts_at, t0);
        assert!(!a.is_firing());
    }

    #[test]
    fn webhook_payload_shape() {
        let alert = Alert {
            status: AlertStatus::Resolved,
            labels: BTreeMap::from([("flow".to_owned(), "checkout".to_owned())]),
            annotations: BTreeMap::new(),
            starts_at: SystemTime::UNIX_EPOCH,
            ends_at: SystemTime::UNIX_EPOCH + Duration::from_secs(90),
        };
        assert_eq!(
            Webhook::payload(&alert),
            json!({
                "version": "4",
                "status": "resolved",
                "receiver": "observe-synthetic",
                "commonLabels": {"flow": "checkout"},
                "commonAnnotations": {},
                "alerts": [{
                    "status": "resolved",
                    "labels": {"flow": "checkout"},
                    "annotations": {},
                    "startsAt": "1970-01-01T00:00:00.000000Z",
                    "endsAt": "1970-01-01T00:01:30.000000Z",
                }],
            })
        );
    }
}
