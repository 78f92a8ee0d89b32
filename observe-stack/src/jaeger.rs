//! A client of Jaeger's query API (`/api/traces`), the trace store's own.

use crate::error::Error;
use serde_json::Value;
use std::collections::BTreeMap;

/// Jaeger's HTTP query API at one address.
#[derive(Clone, Debug)]
pub struct Jaeger {
    base: String,
    client: reqwest::Client,
}

/// One span as the trace store returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct JaegerSpan {
    /// 16 hex digits.
    pub span_id: String,
    /// The `CHILD_OF` reference's span, if any.
    pub parent_span_id: Option<String>,
    /// The span's name.
    pub operation_name: String,
    /// `service.name` of the process that sent it.
    pub service: String,
    /// Its tags (span attributes, `span.kind`, `otel.status_code`, ...).
    pub tags: BTreeMap<String, Value>,
    /// Start, in microseconds since the Unix epoch.
    pub start_us: u64,
    /// Duration in microseconds.
    pub duration_us: u64,
}

impl JaegerSpan {
    /// A tag's value as a string (numbers and booleans written out).
    pub fn tag(&self, key: &str) -> Option<String> {
        self.tags.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// Whether its status is ERROR (`otel.status_code = ERROR`).
    pub fn is_error(&self) -> bool {
        self.tag("otel.status_code").as_deref() == Some("ERROR")
    }
}

/// One trace with every span the store holds for it.
#[derive(Clone, Debug, PartialEq)]
pub struct JaegerTrace {
    /// 32 hex digits.
    pub trace_id: String,
    /// Its spans, in the store's order.
    pub spans: Vec<JaegerSpan>,
}

impl JaegerTrace {
    /// The spans without a parent in this trace (one for a complete trace).
    pub fn roots(&self) -> Vec<&JaegerSpan> {
        self.spans
            .iter()
            .filter(|s| {
                s.parent_span_id
                    .as_ref()
                    .is_none_or(|p| !self.spans.iter().any(|o| &o.span_id == p))
            })
            .collect()
    }

    /// The trace's duration: last end minus first start, in microseconds.
    pub fn duration_us(&self) -> u64 {
        let start = self.spans.iter().map(|s| s.start_us).min().unwrap_or(0);
        let end = self
            .spans
            .iter()
            .map(|s| s.start_us + s.duration_us)
            .max()
            .unwrap_or(0);
        end.saturating_sub(start)
    }

    /// The span tree as indented `service: name` lines, children in start
    /// order: what a test compares exactly.
    pub fn tree(&self) -> Vec<String> {
        fn walk(t: &JaegerTrace, span: &JaegerSpan, depth: usize, out: &mut Vec<String>) {
            out.push(format!(
                "{}{}: {}",
                "  ".repeat(depth),
                span.service,
                span.operation_name
            ));
            let mut children: Vec<&JaegerSpan> = t
                .spans
                .iter()
                .filter(|c| c.parent_span_id.as_deref() == Some(span.span_id.as_str()))
                .collect();
            children.sort_by_key(|c| (c.start_us, c.operation_name.clone()));
            for c in children {
                walk(t, c, depth + 1, out);
            }
        }
        let mut out = Vec::new();
        let mut roots = self.roots();
        roots.sort_by_key(|s| s.start_us);
        for r in roots {
            walk(self, r, 0, &mut out);
        }
        out
    }
}

fn api(url: &str, reason: impl Into<String>) -> Error {
    Error::Api {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

fn parse_trace(url: &str, t: &Value) -> Result<JaegerTrace, Error> {
    let trace_id = t["traceID"]
        .as_str()
        .ok_or_else(|| api(url, "a trace without traceID"))?
        .to_owned();
    let services: BTreeMap<String, String> = t["processes"]
        .as_object()
        .map(|ps| {
            ps.iter()
                .map(|(id, p)| {
                    (
                        id.clone(),
                        p["serviceName"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let spans = t["spans"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| JaegerSpan {
            span_id: s["spanID"].as_str().unwrap_or_default().to_owned(),
            parent_span_id: s["references"].as_array().and_then(|refs| {
                refs.iter()
                    .find(|r| r["refType"] == "CHILD_OF")
                    .and_then(|r| r["spanID"].as_str())
                    .map(str::to_owned)
            }),
            operation_name: s["operationName"].as_str().unwrap_or_default().to_owned(),
            service: s["processID"]
                .as_str()
                .and_then(|p| services.get(p))
                .cloned()
                .unwrap_or_default(),
            tags: s["tags"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|kv| Some((kv["key"].as_str()?.to_owned(), kv["value"].clone())))
                .collect(),
            start_us: s["startTime"].as_u64().unwrap_or(0),
            duration_us: s["duration"].as_u64().unwrap_or(0),
        })
        .collect();
    Ok(JaegerTrace { trace_id, spans })
}

impl Jaeger {
    /// The query API at `base` (`http://127.0.0.1:16686`).
    pub fn new(base: impl Into<String>) -> Jaeger {
        Jaeger {
            base: base.into().trim_end_matches('/').to_owned(),
            client: crate::http::client(),
        }
    }

    /// The base URL (also the UI's).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The exact search URL [`find_traces`](Self::find_traces) requests.
    pub fn search_url(&self, service: &str, tags: &[(&str, &str)], limit: usize) -> String {
        let tags: serde_json::Map<String, Value> = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        let Ok(mut url) = reqwest::Url::parse(&format!("{}/api/traces", self.base)) else {
            // Not a URL: the request fails later with this text in its error.
            return format!("{}/api/traces", self.base);
        };
        url.query_pairs_mut()
            .append_pair("service", service)
            .append_pair("lookback", "1h")
            .append_pair("limit", &limit.to_string());
        if !tags.is_empty() {
            url.query_pairs_mut()
                .append_pair("tags", &Value::Object(tags).to_string());
        }
        url.to_string()
    }

    /// Services the store has spans of.
    pub async fn services(&self) -> Result<Vec<String>, Error> {
        let url = format!("{}/api/services", self.base);
        let v = crate::http::get_json(&self.client, &url, &[]).await?;
        Ok(v["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Traces of `service` in the last hour with spans carrying every tag
    /// (`GET /api/traces?service=..&tags={..}&lookback=1h`), at most 10,000.
    pub async fn find_traces(
        &self,
        service: &str,
        tags: &[(&str, &str)],
    ) -> Result<Vec<JaegerTrace>, Error> {
        let url = self.search_url(service, tags, 10_000);
        let v = crate::http::get_json(&self.client, &url, &[]).await?;
        v["data"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|t| parse_trace(&url, t))
            .collect()
    }

    /// One trace by id (`GET /api/traces/{id}`); `None` when the store has none.
    pub async fn trace(&self, trace_id: &str) -> Result<Option<JaegerTrace>, Error> {
        let url = format!("{}/api/traces/{trace_id}", self.base);
        let res = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| api(&url, e.to_string()))?;
        if res.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let status = res.status();
        let body = res.text().await.map_err(|e| api(&url, e.to_string()))?;
        if !status.is_success() {
            return Err(api(&url, format!("{status}: {body}")));
        }
        let v: Value =
            serde_json::from_str(&body).map_err(|e| api(&url, format!("not JSON: {e}")))?;
        match v["data"].as_array().and_then(|a| a.first()) {
            Some(t) => parse_trace(&url, t).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_trace_and_draws_its_tree() {
        let body = serde_json::json!({
            "traceID": "4bf92f3577b34da6a3ce929d0e0e4736",
            "spans": [
                {"spanID": "b", "operationName": "POST /pay", "processID": "p2", "startTime": 20, "duration": 5,
                 "references": [{"refType": "CHILD_OF", "traceID": "4bf9", "spanID": "a"}],
                 "tags": [{"key": "otel.status_code", "type": "string", "value": "ERROR"},
                          {"key": "http.response.status_code", "type": "int64", "value": 200}]},
                {"spanID": "a", "operationName": "POST /checkout", "processID": "p1", "startTime": 10, "duration": 30,
                 "references": [], "tags": []}
            ],
            "processes": {"p1": {"serviceName": "checkout"}, "p2": {"serviceName": "payment"}}
        });
        let t = parse_trace("u", &body).expect("parses");
        assert_eq!(
            t.tree(),
            ["checkout: POST /checkout", "  payment: POST /pay"]
        );
        assert_eq!(t.duration_us(), 30);
        let pay = &t.spans[0];
        assert!(pay.is_error());
        assert_eq!(pay.tag("http.response.status_code").as_deref(), Some("200"));
        assert_eq!(t.roots().len(), 1);
    }

    #[test]
    fn search_url_carries_the_tags_as_json() {
        let j = Jaeger::new("http://127.0.0.1:16686/");
        assert_eq!(
            j.search_url("payment", &[("order_id", "ord_1")], 20),
            "http://127.0.0.1:16686/api/traces?service=payment&lookback=1h&limit=20&tags=%7B%22order_id%22%3A%22ord_1%22%7D"
        );
    }
}
