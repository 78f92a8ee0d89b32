//! Gateway mode: client spans, times, and success, error and timeout counted apart.

use super::*;

#[tokio::test]
async fn gateway_span_is_a_client_span_named_after_the_gateway() {
    let (r, cap) = Harness::new("payments").run_async(charge(5, None)).await;
    assert_eq!(r.ok().as_deref(), Some("rcpt_5"));
    let s = span(&cap, "gateway bank");
    assert_eq!(s.span_kind, SpanKind::Client);
    assert_eq!(s.status, Status::Unset);
    assert_eq!(
        span_attrs(s),
        attrs(&[
            ("code.function", "charge"),
            ("gateway", "bank"),
            ("order_id", "5")
        ])
    );
    assert_eq!(
        points(&cap, "external_gateway.requests"),
        vec![(attrs(&[("gateway", "bank"), ("status", "success")]), 1.0)]
    );
    assert_eq!(
        points(&cap, "external_gateway.request.duration"),
        vec![(attrs(&[("gateway", "bank"), ("status", "success")]), 1.0)]
    );
    assert!(cap.lines.is_empty());
}

/// The span's times come from the clock reads the call makes for its
/// duration: wall-clock instants around the call, and the same duration as
/// `observed.duration` records.
#[tokio::test]
async fn span_times_are_wall_clock_and_match_the_recorded_duration() {
    let before = std::time::SystemTime::now();
    let (r, cap) = Harness::new("payments")
        .run_async(slow_charge(Duration::from_millis(30)))
        .await;
    let after = std::time::SystemTime::now();
    assert_eq!(r, Ok(()));
    let s = span(&cap, "gateway bank");
    let tolerance = Duration::from_millis(2);
    assert!(
        s.start_time + tolerance >= before,
        "{:?} < {before:?}",
        s.start_time
    );
    assert!(
        s.end_time <= after + tolerance,
        "{:?} > {after:?}",
        s.end_time
    );
    let span_secs = s
        .end_time
        .duration_since(s.start_time)
        .expect("end after start")
        .as_secs_f64();
    assert!(span_secs >= 0.030, "{span_secs}");
    let recorded: Vec<f64> = cap
        .metric("observed.duration")
        .into_iter()
        .map(|p| match p.value {
            MetricValue::Histogram { sum, .. } => sum,
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    // Same two clock reads; only the per-thread wall-clock anchor may move.
    assert!(
        (recorded[0] - span_secs).abs() < 0.001,
        "{recorded:?} vs {span_secs}"
    );
}

#[tokio::test]
async fn gateway_success_error_and_timeout_are_counted_apart() {
    let (r, cap) = Harness::new("payments")
        .run_async(async {
            (
                charge(1, None).await,
                charge(2, Some(BankError::Declined)).await,
                charge(3, Some(BankError::Declined)).await,
                slow_charge(Duration::from_secs(5)).await,
                slow_charge(Duration::ZERO).await,
            )
        })
        .await;
    assert_eq!(
        r,
        (
            Ok("rcpt_1".to_owned()),
            Err(BankError::Declined),
            Err(BankError::Declined),
            Err(BankError::TimedOut),
            Ok(())
        )
    );
    assert_eq!(
        points(&cap, "external_gateway.requests"),
        vec![
            (
                attrs(&[
                    ("error.type", "declined"),
                    ("gateway", "bank"),
                    ("status", "error")
                ]),
                2.0
            ),
            (
                attrs(&[
                    ("error.type", "timeout"),
                    ("gateway", "bank"),
                    ("status", "timeout")
                ]),
                1.0
            ),
            (attrs(&[("gateway", "bank"), ("status", "success")]), 2.0),
        ]
    );
    assert_eq!(
        points(&cap, "external_gateway.request.duration"),
        vec![
            (attrs(&[("gateway", "bank"), ("status", "error")]), 2.0),
            (attrs(&[("gateway", "bank"), ("status", "success")]), 2.0),
            (attrs(&[("gateway", "bank"), ("status", "timeout")]), 1.0),
        ]
    );
    assert_eq!(
        calls(&cap),
        vec![
            ("charge".into(), "observed".into(), "error".into(), 2.0),
            ("charge".into(), "observed".into(), "ok".into(), 1.0),
            ("slow_charge".into(), "observed".into(), "error".into(), 1.0),
            ("slow_charge".into(), "observed".into(), "ok".into(), 1.0),
        ]
    );

    // One line per failure, gateway flavour.
    let failed = cap.events("gateway_call_failed");
    assert_eq!(failed.len(), 3);
    assert_eq!(
        stable(failed[0]),
        json!({
            "level": "ERROR",
            "service": "payments",
            "event": "gateway_call_failed",
            "target": "observe_core::observed",
            "gateway": "bank",
            "code.function": "charge",
            "code.namespace": "observed",
            "error.type": "declined",
            "error.message": "card declined",
            "timeout": false,
            "order_id": 2,
        })
    );
    let timed_out = failed[2];
    assert!(timed_out["duration_ms"].as_u64().is_some_and(|d| d >= 50));
    assert_eq!(
        stable(timed_out),
        json!({
            "level": "ERROR",
            "service": "payments",
            "event": "gateway_call_failed",
            "target": "observe_core::observed",
            "gateway": "bank",
            "code.function": "slow_charge",
            "code.namespace": "observed",
            "error.type": "timeout",
            "error.message": "timed out",
            "timeout": true,
        })
    );
    let timeout_span = cap
        .spans
        .iter()
        .find(|s| span_attrs(s).get("error.type").map(String::as_str) == Some("timeout"))
        .expect("the timed-out span");
    assert_eq!(timeout_span.name, "gateway bank");
    assert_eq!(
        timeout_span.status,
        Status::Error {
            description: "timed out".into()
        }
    );
    assert_eq!(
        span_attrs(timeout_span),
        attrs(&[
            ("code.function", "slow_charge"),
            ("error.type", "timeout"),
            ("gateway", "bank"),
        ])
    );
}

#[observed(gateway = "bank")]
async fn charge_in_region() -> Result<(), BankError> {
    // A value set for one of the call site's attributes replaces it.
    observe::span::with_current_span(|mut h| {
        h.set_attribute(observe::opentelemetry::KeyValue::new("gateway", "bank-eu"))
    });
    Ok(())
}

/// Through observe's own pipeline (what `init` builds) the call site's
/// attributes are added on the pipeline's thread: the exported span has the
/// same attributes, in the same order, as through a simple processor, and a
/// value the call sets for one of them replaces it in place.
#[tokio::test]
async fn spans_queued_on_observes_pipeline_get_their_call_sites_attributes() {
    use observe::tracing::instrument::WithSubscriber as _;
    let (dispatch, guard, exporter) = super::pipeline::on_observes_pipeline(|_| None);
    let charged = charge(5, None).with_subscriber(dispatch.clone()).await;
    let relabelled = charge_in_region().with_subscriber(dispatch).await;
    assert_eq!((charged.as_deref(), relabelled), (Ok("rcpt_5"), Ok(())));
    guard.flush(Duration::from_secs(10)).expect("flushed");
    let spans = exporter.get_finished_spans().expect("spans");
    let in_order = |s: &SpanData| -> Vec<(String, String)> {
        s.attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        spans.iter().map(in_order).collect::<Vec<_>>(),
        vec![
            pairs(&[
                ("code.function", "charge"),
                ("gateway", "bank"),
                ("order_id", "5")
            ]),
            pairs(&[
                ("code.function", "charge_in_region"),
                ("gateway", "bank-eu")
            ]),
        ]
    );
    // And through a simple processor, the same.
    let (_, cap) = Harness::new("payments")
        .run_async(async {
            let _ = charge(5, None).await;
            charge_in_region().await
        })
        .await;
    assert_eq!(
        cap.spans.iter().map(in_order).collect::<Vec<_>>(),
        spans.iter().map(in_order).collect::<Vec<_>>()
    );
}

/// With a count limit the call site's attributes would not fit beside the
/// span's own, they are added before the limit is applied, as through any
/// processor: the first ones are kept, the rest counted.
#[tokio::test]
async fn a_span_over_the_attribute_limit_keeps_its_first_attributes_on_observes_pipeline() {
    use observe::tracing::instrument::WithSubscriber as _;
    let (dispatch, guard, exporter) = super::pipeline::on_observes_pipeline(|k| {
        (k == "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT").then(|| "2".to_owned())
    });
    let charged = charge(5, None).with_subscriber(dispatch).await;
    assert_eq!(charged.as_deref(), Ok("rcpt_5"));
    guard.flush(Duration::from_secs(10)).expect("flushed");
    let spans = exporter.get_finished_spans().expect("spans");
    let got: Vec<_> = spans
        .iter()
        .map(|s| {
            let keys: Vec<String> = s.attributes.iter().map(|kv| kv.key.to_string()).collect();
            (keys, s.dropped_attributes_count)
        })
        .collect();
    assert_eq!(
        got,
        vec![(vec!["code.function".to_owned(), "gateway".to_owned()], 1)]
    );
}
