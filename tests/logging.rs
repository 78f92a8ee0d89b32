//! JSON log lines: exact output, correlation with exported spans, redaction,
//! collisions, plain tracing events, sampling.

use observe::testing::{Capture, Harness, MetricValue};
use observe::tracing::{self, Level};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn at() -> SystemTime {
    // 2026-05-22T02:14:33.123456Z
    UNIX_EPOCH + Duration::new(1_779_416_073, 123_456_000)
}

fn golden() -> Harness {
    Harness::new("payment-service")
        .fixed_time(at())
        .seeded_ids(42)
}

fn trace_hex(cap: &Capture, i: usize) -> String {
    cap.spans[i].span_context.trace_id().to_string()
}

fn span_hex(cap: &Capture, i: usize) -> String {
    cap.spans[i].span_context.span_id().to_string()
}

#[test]
fn golden_line_inside_two_spans() {
    let (_, cap) = golden().run(|| {
        let outer = tracing::info_span!("request", order_id = "ord_123", user_id = 7);
        let _o = outer.enter();
        let inner = tracing::info_span!("charge", gateway = "bank", order_id = "ord_999");
        let _i = inner.enter();
        observe::error!(
            "payment_failed",
            gateway_status_code = 504,
            retryable = true,
            latency_s = 30.25,
            "bank answered {}",
            504
        );
    });
    assert_eq!(cap.spans.len(), 2, "both spans exported");
    let charge = cap.span("charge").expect("charge span");
    let trace = charge.span_context.trace_id().to_string();
    let span = charge.span_context.span_id().to_string();
    let expected = format!(
        concat!(
            r#"{{"timestamp":"2026-05-22T02:14:33.123456Z","level":"ERROR","service":"payment-service","#,
            r#""event":"payment_failed","trace_id":"{}","span_id":"{}","message":"bank answered 504","#,
            r#""target":"logging","gateway_status_code":504,"retryable":true,"latency_s":30.25,"#,
            r#""gateway":"bank","order_id":"ord_999","user_id":7}}"#
        ),
        trace, span
    );
    assert_eq!(cap.raw_lines, vec![expected]);
}

#[test]
fn trace_ids_match_exported_spans_and_null_outside() {
    let (_, cap) = Harness::new("svc").run(|| {
        observe::info!("boot");
        let s = tracing::info_span!("work");
        s.in_scope(|| observe::info!("inside"));
    });
    assert_eq!(cap.lines[0]["trace_id"], Value::Null);
    assert_eq!(cap.lines[0]["span_id"], Value::Null);
    assert_eq!(cap.lines[1]["trace_id"], trace_hex(&cap, 0));
    assert_eq!(cap.lines[1]["span_id"], span_hex(&cap, 0));
    let t = cap.lines[1]["trace_id"].as_str().expect("string");
    assert_eq!(t.len(), 32);
    assert!(t
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
}

#[test]
fn mandatory_keys_come_first_in_order() {
    let (_, cap) = Harness::new("svc").run(|| {
        tracing::info_span!("s", a = 1).in_scope(|| observe::warn!("x_happened", b = 2, "m"));
    });
    let line = &cap.raw_lines[0];
    let keys: Vec<&str> = [
        "\"timestamp\"",
        "\"level\"",
        "\"service\"",
        "\"event\"",
        "\"trace_id\"",
        "\"span_id\"",
        "\"message\"",
        "\"target\"",
        "\"b\"",
        "\"a\"",
    ]
    .into_iter()
    .collect();
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            line.find(k)
                .unwrap_or_else(|| panic!("{k} missing in {line}"))
        })
        .collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(positions, sorted, "{line}");
}

#[test]
fn plain_tracing_events_are_named_by_a_fixed_message_else_by_their_target() {
    let (_, cap) = golden().run(|| {
        tracing::info!(target: "hyper_util::client::legacy", attempt = 3, "connecting");
        tracing::warn!(order_id = 7, "Order fetched.");
        tracing::info!(target: "orders::repo", "fetched 3 orders");
        tracing::info!(target: "orders::repo", attempt = 1);
        // One call site whose message carries a value: named by its first
        // message, then by its target once the message changed.
        for user in ["alice", "bob", "carol"] {
            tracing::info!(target: "auth::login", "user {user} logged in");
        }
    });
    assert_eq!(
        cap.lines[0],
        json!({
            "timestamp": "2026-05-22T02:14:33.123456Z",
            "level": "INFO",
            "service": "payment-service",
            "event": "connecting",
            "trace_id": null,
            "span_id": null,
            "event_inferred": true,
            "message": "connecting",
            "target": "hyper_util::client::legacy",
            "attempt": 3
        })
    );
    let names: Vec<_> = cap
        .lines
        .iter()
        .map(|l| {
            assert_eq!(l["event_inferred"], true, "{l}");
            l["event"].as_str().expect("event").to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "connecting",
            "order_fetched",
            "orders_repo",
            "orders_repo",
            "user_alice_logged_in",
            "auth_login",
            "auth_login"
        ]
    );
}

#[test]
fn colliding_field_names_are_prefixed_not_lost() {
    let (_, cap) = Harness::new("svc").run(|| {
        let s = tracing::info_span!("s", service = "other");
        s.in_scope(|| {
            tracing::info!(
                event = "real_name",
                level = "custom",
                trace_id = 5,
                target = "t"
            )
        });
    });
    let l = &cap.lines[0];
    assert_eq!(l["event"], "real_name");
    assert!(l.get("event_inferred").is_none());
    assert_eq!(l["level"], "INFO");
    assert_eq!(l["field_level"], "custom");
    assert_eq!(l["field_trace_id"], 5);
    assert_eq!(l["field_target"], "t");
    assert_eq!(l["service"], "svc");
    assert_eq!(l["field_service"], "other");
}

#[test]
fn denied_fields_are_redacted_everywhere() {
    let (_, cap) = Harness::new("svc").run(|| {
        let s = tracing::info_span!(
            "login",
            user_email = "ada@example.com",
            session_token = "abc"
        );
        s.in_scope(|| {
            observe::info!(
                "login_ok",
                password = "hunter2",
                card_number = 4111111111111111u64,
                amount_cents = 5
            );
        });
    });
    let l = &cap.lines[0];
    assert_eq!(l["password"], "[REDACTED]");
    assert_eq!(l["card_number"], "[REDACTED]");
    assert_eq!(l["user_email"], "[REDACTED]");
    assert_eq!(l["session_token"], "[REDACTED]");
    assert_eq!(l["amount_cents"], 5);
    for raw in &cap.raw_lines {
        assert!(
            !raw.contains("hunter2") && !raw.contains("ada@example.com") && !raw.contains("4111")
        );
    }
    let span = cap.span("login").expect("span");
    for kv in &span.attributes {
        let v = kv.value.to_string();
        assert!(!v.contains("ada@") && v != "abc", "{kv:?}");
    }
    for rec in &cap.log_records {
        for (_, v) in rec.attributes_iter() {
            assert!(!format!("{v:?}").contains("hunter2"));
        }
    }
}

#[test]
fn long_and_hostile_values_stay_one_valid_line() {
    let long = "x".repeat(20_000);
    let (_, cap) = Harness::new("svc")
        .configure(|b| b.max_value_len(100))
        .run(|| {
            observe::info!(
                "hostile",
                injected = "ok\"}\n{\"level\":\"ERROR\",\"event\":\"fake\"",
                long = %long,
                ctrl = "\u{0}\u{1b}[31m",
                bytes = ?b"\xff\xfe"
            );
        });
    assert_eq!(cap.raw_lines.len(), 1, "no second line can be injected");
    let l = &cap.lines[0];
    assert_eq!(
        l["injected"],
        "ok\"}\n{\"level\":\"ERROR\",\"event\":\"fake\""
    );
    assert_eq!(l["ctrl"], "\u{0}\u{1b}[31m");
    let long_v = l["long"].as_str().expect("str");
    assert!(long_v.ends_with("…[truncated]"));
    assert_eq!(long_v.len(), 100 + "…[truncated]".len());
}

#[test]
fn fields_recorded_later_appear_on_later_lines() {
    let (_, cap) = Harness::new("svc").run(|| {
        let s = tracing::info_span!("request", order_id = tracing::field::Empty);
        let _e = s.enter();
        observe::info!("before");
        s.record("order_id", "ord_1");
        observe::info!("after");
        s.record("order_id", "ord_2");
        observe::info!("again");
    });
    assert!(cap.lines[0].get("order_id").is_none());
    assert_eq!(cap.lines[1]["order_id"], "ord_1");
    assert_eq!(cap.lines[2]["order_id"], "ord_2");
    assert_eq!(cap.raw_lines[2].matches("order_id").count(), 1);
    let span = cap.span("request").expect("span");
    let ids: Vec<_> = span
        .attributes
        .iter()
        .filter(|kv| kv.key.as_str() == "order_id")
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].value.to_string(), "ord_2");
}

#[test]
fn log_records_carry_the_span_ids() {
    let (_, cap) = Harness::new("svc").run(|| {
        tracing::info_span!("op").in_scope(|| observe::warn!("slow_query", ms = 1200, "slow"));
    });
    assert_eq!(cap.log_records.len(), 1);
    let rec = &cap.log_records[0];
    let tc = rec.trace_context().expect("trace context");
    assert_eq!(tc.trace_id, cap.spans[0].span_context.trace_id());
    assert_eq!(tc.span_id, cap.spans[0].span_context.span_id());
    assert_eq!(rec.event_name(), Some("slow_query"));
    assert_eq!(rec.severity_text(), Some("WARN"));
}

#[test]
fn log_records_carry_the_enclosing_spans_fields_as_the_line_does() {
    use observe::opentelemetry::logs::AnyValue;
    let (_, cap) = Harness::new("svc").run(|| {
        tracing::info_span!("request", order_id = "ord_7", attempt = 2u64, retry = true).in_scope(
            || {
                tracing::info_span!("inner", attempt = 3u64)
                    .in_scope(|| observe::warn!("slow_query", ms = 1200, retry = false, "slow"))
            },
        );
    });
    assert_eq!(cap.log_records.len(), 1);
    let mut attrs: Vec<(String, AnyValue)> = cap.log_records[0]
        .attributes_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
        .collect();
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
    // The event's fields, then the spans' (innermost wins; an event field
    // of the same name wins): the same set as the JSON line.
    assert_eq!(
        attrs,
        vec![
            ("attempt".to_owned(), AnyValue::Int(3)),
            ("ms".to_owned(), AnyValue::Int(1200)),
            ("order_id".to_owned(), AnyValue::from("ord_7")),
            ("retry".to_owned(), AnyValue::Boolean(false)),
        ]
    );
    let line = &cap.lines[0];
    assert_eq!(line["order_id"], "ord_7");
    assert_eq!(line["attempt"], 3);
    assert_eq!(line["retry"], false);
}

#[test]
fn error_events_become_span_events() {
    let (_, cap) = Harness::new("svc").run(|| {
        tracing::info_span!("op").in_scope(|| {
            observe::info!("not_an_event_on_the_span");
            observe::error!("gateway_failed", "bank timed out");
        })
    });
    let span = cap.span("op").expect("span");
    let names: Vec<_> = span.events.iter().map(|e| e.name.to_string()).collect();
    assert_eq!(names, vec!["gateway_failed"]);
}

#[test]
fn otel_fields_steer_the_exported_span() {
    let (_, cap) = Harness::new("svc").run(|| {
        let s = tracing::info_span!(
            "h",
            otel.name = "GET /pay",
            otel.kind = "server",
            otel.status_code = tracing::field::Empty
        );
        s.in_scope(|| observe::info!("x"));
        s.record("otel.status_code", "error");
    });
    let span = &cap.spans[0];
    assert_eq!(span.name, "GET /pay");
    assert_eq!(
        span.span_kind,
        observe::opentelemetry::trace::SpanKind::Server
    );
    assert!(matches!(
        span.status,
        observe::opentelemetry::trace::Status::Error { .. }
    ));
    assert!(cap.lines[0].get("otel.name").is_none());
}

#[test]
fn log_sampling_is_trace_consistent_and_keeps_failed_requests() {
    let (_, cap) = Harness::new("svc")
        .configure(|b| b.log_sampling(observe::LogSampling::new().level(Level::INFO, 0.0)))
        .run(|| {
            // A successful request: its INFO lines are dropped.
            tracing::info_span!("ok_request").in_scope(|| {
                observe::info!("step_one");
                observe::info!("step_two");
            });
            // A failed request: its INFO lines are written when it ends.
            let failed =
                tracing::info_span!("bad_request", otel.status_code = tracing::field::Empty);
            failed.in_scope(|| {
                observe::info!("step_one");
                observe::error!("it_broke");
            });
            failed.record("otel.status_code", "error");
            drop(failed);
            // Outside any request: dropped.
            observe::info!("outside");
        });
    let events: Vec<_> = cap
        .lines
        .iter()
        .map(|l| l["event"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(events, vec!["it_broke", "step_one"]);
    let dropped: Vec<_> = cap
        .metric("observe.logs.dropped")
        .into_iter()
        .map(|p| (p.attributes["reason"].clone(), p.value.clone()))
        .collect();
    assert!(
        dropped.contains(&("sampled".to_owned(), MetricValue::Sum(3.0))),
        "{dropped:?}"
    );
    let buffered: Vec<_> = cap
        .metric("observe.logs.buffered")
        .into_iter()
        .map(|p| (p.attributes["outcome"].clone(), p.value.clone()))
        .collect();
    assert!(
        buffered.contains(&("written".to_owned(), MetricValue::Sum(1.0))),
        "{buffered:?}"
    );
    assert!(
        buffered.contains(&("discarded".to_owned(), MetricValue::Sum(2.0))),
        "{buffered:?}"
    );
}

#[test]
fn full_fidelity_switch_keeps_everything() {
    let (_, cap) = Harness::new("svc")
        .configure(|b| b.log_sampling(observe::LogSampling::new().level(Level::INFO, 0.0)))
        .run(|| {
            observe::info!("dropped_before");
            observe::sampling().full_fidelity_for(Duration::from_secs(60));
            assert!(observe::sampling().is_full_fidelity());
            observe::info!("kept_during");
            observe::sampling().end_full_fidelity();
            observe::info!("dropped_after");
        });
    let events: Vec<_> = cap.lines.iter().map(|l| l["event"].clone()).collect();
    assert_eq!(events, vec![json!("kept_during")]);
}

#[test]
fn current_trace_id_and_traceparent() {
    let ((tid, tp), cap) = Harness::new("svc").run(|| {
        tracing::info_span!("create_order")
            .in_scope(|| (observe::current_trace_id(), observe::current_traceparent()))
    });
    let tid = tid.expect("inside a span");
    assert_eq!(tid, trace_hex(&cap, 0));
    assert_eq!(
        tp.expect("traceparent"),
        format!("00-{}-{}-03", tid, span_hex(&cap, 0))
    );
    assert_eq!(observe::current_trace_id(), None);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any string, integer, float or Debug value yields exactly one valid
        /// JSON line, and strings round-trip exactly (below the cap).
        #[test]
        fn any_value_is_one_json_line(
            s in any::<String>(),
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            n in any::<i64>(),
            u in any::<u64>(),
            f in any::<f64>(),
            b in any::<bool>(),
        ) {
            let s2 = s.clone();
            let (_, cap) = Harness::new("svc").run(move || {
                let span = tracing::info_span!("s", span_value = %s2);
                span.in_scope(|| {
                    observe::info!("prop", text = %s2, raw = ?bytes, n = n, u = u, f = f, b = b, "{}", s2);
                });
            });
            prop_assert_eq!(cap.raw_lines.len(), 1);
            prop_assert!(!cap.raw_lines[0].contains('\n'));
            let line: Value = serde_json::from_str(&cap.raw_lines[0]).expect("valid JSON");
            prop_assert_eq!(line["text"].as_str(), Some(s.as_str()));
            prop_assert_eq!(line["message"].as_str(), Some(s.as_str()));
            prop_assert_eq!(line["span_value"].as_str(), Some(s.as_str()));
            prop_assert_eq!(line["n"].as_i64(), Some(n));
            prop_assert_eq!(line["u"].as_u64(), Some(u));
            prop_assert_eq!(line["b"].as_bool(), Some(b));
            if f.is_finite() {
                prop_assert_eq!(line["f"].as_f64(), Some(f));
            } else {
                prop_assert!(line["f"].is_string());
            }
        }
    }
}
