//! Runs: traces, metrics, failures, panics, hangs and settings.

use super::*;

#[tokio::test]
async fn a_passing_run_is_one_trace_with_exact_metrics_and_context_on_every_request() {
    let metrics = Metrics::new();
    let ((report, stub), cap) = Harness::new("synthetic-runner")
        .run_async(async {
            let (base, stub) = start_stub().await;
            let mut runner = metrics.runner(checkout(base)).build().expect("config");
            (runner.run_once().await, stub)
        })
        .await;

    assert!(report.is_success(), "{:?}", report.failure);
    assert_eq!(
        outcomes(&report),
        vec![
            ("login".to_owned(), StepOutcome::Success),
            ("create_order".to_owned(), StepOutcome::Success),
            ("pay".to_owned(), StepOutcome::Success),
            ("confirm".to_owned(), StepOutcome::Success),
        ]
    );

    // One trace: the root and a child per step, nothing else.
    assert_eq!(cap.spans.len(), 5);
    let (root, steps) = run_spans(&cap, &report);
    assert_eq!(root.name, "synthetic checkout");
    assert_eq!(span_attr(root, "flow").as_deref(), Some("checkout"));
    assert_eq!(span_attr(root, "region").as_deref(), Some("eu-west-1"));
    assert_eq!(
        span_attr(root, "synthetic.outcome").as_deref(),
        Some("success")
    );
    assert_eq!(root.status, Status::Ok);
    assert_eq!(names(&steps), ["login", "create_order", "pay", "confirm"]);
    for s in &steps {
        assert_eq!(s.status, Status::Ok, "{}", s.name);
        assert_eq!(span_attr(s, "step").as_deref(), Some(&*s.name));
    }

    // Every request carried the step's traceparent and baggage synthetic=true.
    assert_eq!(*stub.violations.lock().expect("lock"), Vec::<String>::new());
    let trace_id = report.trace_id.clone().expect("trace id");
    let expected: Vec<Seen> = [
        "POST /login",
        "POST /orders",
        "POST /pay",
        "GET /orders/{id}",
    ]
    .iter()
    .zip(&steps)
    .map(|(route, step)| Seen {
        route: (*route).to_owned(),
        traceparent: Some(format!("00-{trace_id}-{}-03", step.span_context.span_id())),
        baggage: Some("synthetic=true".to_owned()),
    })
    .collect();
    assert_eq!(stub.seen(), expected);

    // Metric points with exact attribute sets.
    let mut want = Vec::new();
    for step in ["confirm", "create_order", "login", "pay"] {
        want.push(step_point("synthetic.check.duration", step, None, 1.0));
    }
    want.push(success_point(1.0));
    for step in ["confirm", "create_order", "login", "pay"] {
        want.push(step_point("synthetic.checks", step, Some("success"), 1.0));
    }
    assert_eq!(metrics.points(), sorted(want));

    // The run's log line is in its trace and marked synthetic.
    let lines = cap.events("synthetic_run_succeeded");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["trace_id"], trace_id.as_str());
    assert_eq!(lines[0]["synthetic"], true);
    assert_eq!(lines[0]["flow"], "checkout");
    assert_eq!(lines[0]["region"], "eu-west-1");
}

#[tokio::test]
async fn the_service_under_check_joins_the_run_trace_and_marks_its_telemetry_synthetic() {
    let metrics = Metrics::new();
    let (report, cap) = Harness::new("payments")
        .configure(|b| b.mark_synthetic_metrics(true))
        .run_async(async {
            let (base, _stub) = start_stub_with(true).await;
            let mut runner = metrics.runner(checkout(base)).build().expect("config");
            runner.run_once().await
        })
        .await;
    assert!(report.is_success(), "{:?}", report.failure);
    let trace_id = report.trace_id.clone().expect("trace id");
    // Root, 4 steps, and under each step the service's server span.
    assert_eq!(cap.spans.len(), 9);
    let mut steps: Vec<&SpanData> = cap
        .spans
        .iter()
        .filter(|s| span_attr(s, "step").is_some())
        .collect();
    steps.sort_by_key(|s| s.start_time);
    let mut servers: Vec<&SpanData> = cap
        .spans
        .iter()
        .filter(|s| s.span_kind == observe::opentelemetry::trace::SpanKind::Server)
        .collect();
    servers.sort_by_key(|s| s.start_time);
    assert_eq!(servers.len(), 4);
    for (server, step) in servers.iter().zip(&steps) {
        assert_eq!(server.span_context.trace_id().to_string(), trace_id);
        assert_eq!(server.parent_span_id, step.span_context.span_id());
        assert!(server.parent_span_is_remote);
        assert_eq!(span_attr(server, "synthetic").as_deref(), Some("true"));
    }
    // The service's request metrics carry synthetic="true".
    let marked: Vec<Option<&String>> = cap
        .metric("http.server.request.duration")
        .iter()
        .map(|p| p.attributes.get("synthetic"))
        .collect();
    assert_eq!(marked.len(), 4);
    assert!(
        marked.iter().all(|m| m.map(String::as_str) == Some("true")),
        "{marked:?}"
    );
}

#[tokio::test]
async fn a_failing_step_stops_the_run_and_names_the_assertion_and_value() {
    let metrics = Metrics::new();
    let ((report, stub), cap) = Harness::new("synthetic-runner")
        .run_async(async {
            let (base, stub) = start_stub().await;
            stub.set_mode(PROCESSING);
            let mut runner = metrics.runner(checkout(base)).build().expect("config");
            (runner.run_once().await, stub)
        })
        .await;

    let failure = report.failure.clone().expect("failed");
    assert_eq!(
        failure.to_string(),
        r#"pay: expected status "success", got "processing""#
    );
    assert_eq!(failure.outcome, StepOutcome::Failure);
    assert_eq!(
        failure.assertion,
        Some(Assertion {
            what: "status".to_owned(),
            expected: Some(r#""success""#.to_owned()),
            got: r#""processing""#.to_owned(),
        })
    );
    assert_eq!(
        outcomes(&report),
        vec![
            ("login".to_owned(), StepOutcome::Success),
            ("create_order".to_owned(), StepOutcome::Success),
            ("pay".to_owned(), StepOutcome::Failure),
        ]
    );
    // confirm never ran: no request, no span, no metric.
    let routes: Vec<String> = stub.seen().into_iter().map(|s| s.route).collect();
    assert_eq!(routes, ["POST /login", "POST /orders", "POST /pay"]);
    let (root, steps) = run_spans(&cap, &report);
    assert_eq!(names(&steps), ["login", "create_order", "pay"]);
    assert_eq!(
        steps[2].status,
        Status::error(r#"pay: expected status "success", got "processing""#)
    );
    assert_eq!(
        root.status,
        Status::error(r#"pay: expected status "success", got "processing""#)
    );
    assert_eq!(
        span_attr(root, "synthetic.outcome").as_deref(),
        Some("failure")
    );

    let mut want = Vec::new();
    for step in ["create_order", "login", "pay"] {
        want.push(step_point("synthetic.check.duration", step, None, 1.0));
    }
    want.push(success_point(0.0));
    want.push(step_point(
        "synthetic.checks",
        "create_order",
        Some("success"),
        1.0,
    ));
    want.push(step_point(
        "synthetic.checks",
        "login",
        Some("success"),
        1.0,
    ));
    want.push(step_point("synthetic.checks", "pay", Some("failure"), 1.0));
    assert_eq!(metrics.points(), sorted(want));

    let lines = cap.events("synthetic_run_failed");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["level"], "ERROR");
    assert_eq!(lines[0]["step"], "pay");
    assert_eq!(lines[0]["outcome"], "failure");
    assert_eq!(
        lines[0]["reason"],
        r#"expected status "success", got "processing""#
    );
    assert_eq!(lines[0]["synthetic"], true);
    assert_eq!(
        lines[0]["trace_id"],
        report.trace_id.as_deref().expect("trace")
    );
}

#[tokio::test]
async fn panicking_and_hanging_steps_are_failed_runs_and_the_runner_keeps_its_schedule() {
    const INTERVAL: Duration = Duration::from_millis(700);
    let metrics = Metrics::new();
    let ((reports, state, begin), cap) = Harness::new("synthetic-runner")
        .run_async(async {
            let (base, stub) = start_stub().await;
            let attempt = Arc::new(AtomicU32::new(0));
            // Run 1 panics in "pay"; run 2 hangs in "pay" (the gateway never
            // answers); run 3 passes.
            let flow = Flow::new("checkout", move |ctx| {
                let (base, stub) = (base.clone(), Arc::clone(&stub));
                let n = attempt.fetch_add(1, Ordering::SeqCst);
                async move {
                    ctx.step("login", async { Ok(()) }).await?;
                    ctx.step("pay", async {
                        match n {
                            0 => panic!("card reader exploded"),
                            1 => stub.set_mode(HANGING),
                            _ => stub.set_mode(HEALTHY),
                        }
                        let res = ctx
                            .http()
                            .post(format!("{base}/pay"))
                            .json(&json!({"order_id": "ord_1"}))
                            .send()
                            .await?;
                        res.expect_json("status", "success")?;
                        Ok(())
                    })
                    .await?;
                    Ok(())
                }
            });
            let reports = Arc::new(Mutex::new(Vec::new()));
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
            let mut done_tx = Some(done_tx);
            let sink = Arc::clone(&reports);
            let mut runner = metrics
                .runner(flow)
                .interval(INTERVAL)
                .step_timeout(Duration::from_millis(250))
                .on_run(move |r| {
                    let mut v = sink.lock().expect("lock");
                    v.push(r.clone());
                    if v.len() == 3 {
                        if let Some(tx) = done_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                })
                .build()
                .expect("config");
            let begin = std::time::SystemTime::now();
            runner
                .run_until(async {
                    let _ = done_rx.await;
                })
                .await;
            let reports = reports.lock().expect("lock").clone();
            (reports, runner.state(), begin)
        })
        .await;

    let failures: Vec<Option<String>> = reports
        .iter()
        .map(|r| r.failure.as_ref().map(ToString::to_string))
        .collect();
    assert_eq!(
        failures,
        [
            Some("pay: panicked: card reader exploded".to_owned()),
            Some("pay: timed out after 0.250 s".to_owned()),
            None,
        ]
    );
    assert_eq!(
        reports
            .iter()
            .map(|r| r.steps.last().map(|s| s.outcome))
            .collect::<Vec<_>>(),
        [
            Some(StepOutcome::Panic),
            Some(StepOutcome::Timeout),
            Some(StepOutcome::Success)
        ]
    );
    // On schedule: run k starts at its tick, k intervals after the runner
    // started (never early; late only by scheduling delay on a loaded machine).
    for (k, r) in (0u32..).zip(&reports) {
        let offset = r.started.duration_since(begin).expect("after begin");
        let tick = INTERVAL * k;
        assert!(
            offset + Duration::from_millis(5) >= tick && offset < tick + Duration::from_millis(400),
            "run {k} started {offset:?} after begin, tick at {tick:?}"
        );
    }
    assert_eq!(state.runs, 3);
    assert_eq!(state.failed_runs, 2);
    assert_eq!(state.consecutive_failures, 0);
    assert!(
        !state.alert_firing,
        "the passing run resolved it: {state:?}"
    );

    // Each run is its own trace; the failed step spans say why.
    for (report, status) in reports.iter().zip([
        Status::error("pay: panicked: card reader exploded"),
        Status::error("pay: timed out after 0.250 s"),
        Status::Ok,
    ]) {
        let (root, steps) = run_spans(&cap, report);
        assert_eq!(names(&steps), ["login", "pay"]);
        assert_eq!(steps[1].status, status);
        assert_eq!(root.status, status);
    }
    let checks: Vec<Point> = metrics
        .points()
        .into_iter()
        .filter(|p| p.0 == "synthetic.checks")
        .collect();
    assert_eq!(
        checks,
        sorted(vec![
            step_point("synthetic.checks", "login", Some("success"), 3.0),
            step_point("synthetic.checks", "pay", Some("panic"), 1.0),
            step_point("synthetic.checks", "pay", Some("success"), 1.0),
            step_point("synthetic.checks", "pay", Some("timeout"), 1.0),
        ])
    );
}

#[tokio::test]
async fn failures_outside_steps_are_failed_runs_counted_under_flow() {
    let metrics = Metrics::new();
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    let flow = Flow::new("checkout", move |ctx| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            ctx.step("login", async { Ok(()) }).await?;
            match n {
                0 => panic!("between steps"),
                1 => Err(observe::synthetic::StepError::other("no sentinel SKU configured").into()),
                _ => {
                    // Hangs outside any step: the run deadline ends it.
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(())
                }
            }
        }
    });
    let mut runner = metrics
        .runner(flow)
        .run_timeout(Duration::from_millis(300))
        .build()
        .expect("config");
    let mut failures = Vec::new();
    for _ in 0..3 {
        let r = runner.run_once().await;
        let f = r.failure.expect("failed");
        failures.push((f.to_string(), f.outcome));
    }
    assert_eq!(
        failures,
        [
            (
                "_flow: panicked: between steps".to_owned(),
                StepOutcome::Panic
            ),
            (
                "_flow: no sentinel SKU configured".to_owned(),
                StepOutcome::Failure
            ),
            (
                "_flow: run timed out after 0.300 s".to_owned(),
                StepOutcome::Timeout
            ),
        ]
    );
    assert_eq!(runner.state().consecutive_failures, 3);
    let flow_checks: Vec<Point> = metrics
        .points()
        .into_iter()
        .filter(|p| p.0 == "synthetic.checks" && p.1["step"] == "_flow")
        .collect();
    assert_eq!(
        flow_checks,
        sorted(vec![
            step_point("synthetic.checks", "_flow", Some("failure"), 1.0),
            step_point("synthetic.checks", "_flow", Some("panic"), 1.0),
            step_point("synthetic.checks", "_flow", Some("timeout"), 1.0),
        ])
    );
}

#[tokio::test]
async fn requests_go_through_a_custom_connector() {
    use hyper_util::client::legacy::connect::HttpConnector;
    use tower::Service as _;
    let (base, stub) = start_stub().await;
    let connects = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&connects);
    let http = HttpConnector::new();
    // What an HTTPS connector (hyper-rustls) would plug into.
    let connector = tower::service_fn(move |uri: http::Uri| {
        counted.fetch_add(1, Ordering::SeqCst);
        let mut http = http.clone();
        Box::pin(async move { http.call(uri).await })
    });
    let mut runner = Runner::builder(checkout(base))
        .connector(connector)
        .build()
        .expect("config");
    for _ in 0..2 {
        let report = runner.run_once().await;
        assert!(report.is_success(), "{:?}", report.failure);
    }
    assert_eq!(stub.seen().len(), 8);
    // One connection per run, kept alive across its steps; a run shares no
    // connection with the previous one (like a new user).
    assert_eq!(connects.load(Ordering::SeqCst), 2);
}

#[test]
fn runner_and_flow_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let mut runner = Runner::builder(checkout("http://127.0.0.1:9".to_owned()))
        .build()
        .expect("config");
    let fut = runner.run_forever();
    assert_send(&fut);
}

#[test]
fn invalid_settings_are_typed_errors() {
    use observe::synthetic::ConfigError;
    let flow = || Flow::new("checkout", |_ctx| async { Ok(()) });
    assert_eq!(
        Runner::builder(flow())
            .interval(Duration::ZERO)
            .build()
            .err(),
        Some(ConfigError::ZeroDuration { field: "interval" })
    );
    assert_eq!(
        Runner::builder(flow()).alert_after(0).build().err(),
        Some(ConfigError::ZeroAlertAfter)
    );
    assert_eq!(
        Runner::builder(flow()).region("").build().err(),
        Some(ConfigError::InvalidName {
            field: "region",
            value: String::new()
        })
    );
    assert!(matches!(
        Runner::builder(flow())
            .interval(Duration::from_secs(10))
            .jitter(Duration::from_secs(10))
            .build(),
        Err(ConfigError::JitterTooLarge { .. })
    ));
    assert!(matches!(
        Alertmanager::new("not a url"),
        Err(ConfigError::InvalidUrl { .. })
    ));
}
