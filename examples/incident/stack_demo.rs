//! `cargo run --release --features alerts,synthetic --example incident -- --stack`: the incident on the
//! seed's real stack, told as the on-call engineer would see it.

use crate::services::{BoxError, Traffic};
use crate::stack::{IncidentStack, FOR, RATE_WINDOW, SCRAPE};
use observe_stack::JaegerTrace;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Healthy traffic before the fault, and the longest the fault runs.
const HEALTHY: Duration = Duration::from_secs(20);
const FAULT_MAX: Duration = Duration::from_secs(60);
/// One second of the demo's alerting is this many seconds in production
/// (5 m rate windows against the demo's 10 s).
const SCALE: f64 = 30.0;

const WANTED: [&str; 4] = [
    "SyntheticCheckFailed",
    "ErrorBudgetBurn",
    "ExternalGatewayErrors",
    "HighErrorRate",
];

fn say(t0: Instant, msg: impl std::fmt::Display) {
    println!("▶ {:>6.1} s  {msg}", t0.elapsed().as_secs_f64());
}

/// Alert name → seconds after the fault when it first fired (Prometheus on
/// the Collector's series) or arrived (Alertmanager).
async fn poll_alerts(
    stack: &IncidentStack,
    seen: &mut BTreeMap<String, f64>,
    fault: Instant,
    t0: Instant,
) {
    let mut now: Vec<String> = Vec::new();
    if let Some(p) = &stack.prom_otlp {
        if let Ok(alerts) = p.alerts().await {
            now.extend(
                alerts
                    .into_iter()
                    .filter(|a| a.state == "firing")
                    .map(|a| format!("Prometheus fires {}", a.name)),
            );
        }
    }
    if let Some(am) = &stack.alertmanager {
        if let Ok(alerts) = am.alerts().await {
            now.extend(
                alerts
                    .into_iter()
                    .filter(|a| a.state == "active")
                    .map(|a| format!("Alertmanager has {}", a.name)),
            );
        }
    }
    for what in now {
        if let std::collections::btree_map::Entry::Vacant(e) = seen.entry(what) {
            let at = fault.elapsed().as_secs_f64();
            say(t0, format!("{}  (+{at:.1} s after the fault)", e.key()));
            e.insert(at);
        }
    }
}

fn waterfall(t: &JaegerTrace) {
    let start = t.spans.iter().map(|s| s.start_us).min().unwrap_or(0);
    let total = t.duration_us().max(1) as f64;
    let width = 32.0;
    let lines = t.tree();
    // `tree()` lists spans depth first; find each one's row by name and service.
    let mut used = vec![false; t.spans.len()];
    for line in &lines {
        let depth = line.len() - line.trim_start().len();
        let (service, name) = line.trim_start().split_once(": ").unwrap_or(("", line));
        let Some((i, s)) = t
            .spans
            .iter()
            .enumerate()
            .find(|(i, s)| !used[*i] && s.service == service && s.operation_name == name)
        else {
            continue;
        };
        used[i] = true;
        let from = ((s.start_us - start) as f64 / total * width) as usize;
        let to = (((s.start_us + s.duration_us - start) as f64 / total * width).ceil() as usize)
            .max(from + 1);
        let bar: String = (0..width as usize)
            .map(|c| if c >= from && c < to { '█' } else { ' ' })
            .collect();
        let status = if s.is_error() {
            format!(
                "ERROR {}",
                s.tag("error.type").unwrap_or_else(|| "error".to_owned())
            )
        } else {
            String::new()
        };
        let label = format!("{}{}: {}", " ".repeat(depth), s.service, s.operation_name);
        println!(
            "  {label:<44} |{bar}| {:>7.1} ms  {status}",
            s.duration_us as f64 / 1000.0
        );
    }
}

/// Runs the demo; `Err` carries an engine's own message (a config error).
pub(crate) async fn run() -> Result<(), BoxError> {
    let t0 = Instant::now();
    println!("▶ observe incident on the seed's stack: starting the engines …");
    let mut stack = IncidentStack::start(false).await?;
    for m in &stack.missing {
        println!("  ! {m}");
    }
    if let Some(c) = &stack.collector {
        println!(
            "  Collector (Jaeger v2)  OTLP {}  ·  trace store UI/API {}",
            c.otlp_http_url(),
            c.query_url()
        );
    }
    if let Some(l) = &stack.logs {
        println!(
            "  VictoriaLogs           {}  (LogsQL: /select/logsql/query)",
            l.url()
        );
    }
    if let Some(p) = &stack.prom_otlp {
        println!(
            "  Prometheus             {}  (rules on the Collector's series)",
            p.url()
        );
    }
    if let Some(p) = &stack.prom_pull {
        println!(
            "  Prometheus             {}  (rules on payment's own /metrics)",
            p.url()
        );
    }
    if let Some(a) = &stack.alertmanager {
        println!("  Alertmanager           {}", a.url());
    }
    println!(
        "  services: checkout {} → fraud (Python) {} → payment {} → bank simulator",
        stack.services.checkout.url, stack.services.fraud.url, stack.services.payment.url
    );
    println!(
        "\n  time scale: scrape {} s, rate windows {} s, for: {FOR} (production: 15 s, 5 m, 2 m),\n  so 1 s here ≈ {SCALE:.0} s of the real incident for the window-bound alerts.\n",
        SCRAPE.as_secs(),
        RATE_WINDOW.as_secs()
    );

    let traffic = Traffic::start(
        &stack.services.checkout.url,
        6,
        Duration::from_millis(80),
        "ord",
    );
    // Every series the rules read exists before the healthy run is judged
    // (a fresh deployment's first seconds have no synthetic result yet).
    if let Some(p) = &stack.prom_otlp {
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_secs(30) {
            let ready = p
                .query("synthetic_check_success{flow=\"checkout\"}")
                .await
                .is_ok_and(|r| !r.is_empty());
            if ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    say(
        t0,
        format!(
            "users place orders; the bank is healthy for {} s",
            HEALTHY.as_secs()
        ),
    );
    let mut seen = BTreeMap::new();
    let healthy_until = Instant::now() + HEALTHY;
    while Instant::now() < healthy_until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        poll_alerts(&stack, &mut seen, Instant::now(), t0).await;
    }
    if !seen.is_empty() {
        say(t0, "alerts fired during the healthy run (see above)");
    }
    seen.clear();
    let paid = traffic
        .orders()
        .iter()
        .filter(|o| o.status == "success")
        .count();
    say(
        t0,
        format!("{paid} orders paid; no alert. FAULT: the bank answers 504 from now on"),
    );
    stack.bank.failing.store(true, Ordering::Relaxed);
    let fault = Instant::now();
    while fault.elapsed() < FAULT_MAX {
        tokio::time::sleep(Duration::from_millis(500)).await;
        poll_alerts(&stack, &mut seen, fault, t0).await;
        let all = WANTED.iter().all(|w| {
            seen.keys()
                .any(|k| k.starts_with("Alertmanager") && k.ends_with(w))
        });
        if all || stack.prom_otlp.is_none() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let orders = traffic.stop().await;
    let processing = orders
        .iter()
        .filter(|o| o.at > fault && o.status == "processing")
        .count();
    say(
        t0,
        format!(
            "{} orders during the fault, {processing} answered 200 {{\"status\":\"processing\"}}: every one of them a failed payment",
            orders.iter().filter(|o| o.at > fault).count()
        ),
    );

    println!(
        "\n== detection timeline (demo seconds after the fault; ≈ production at ×{SCALE:.0}) =="
    );
    let mut rows: Vec<(&String, &f64)> = seen.iter().collect();
    rows.sort_by(|a, b| a.1.total_cmp(b.1));
    for (what, at) in rows {
        println!("  +{at:>5.1} s  (≈ {:>4.1} min)  {what}", at * SCALE / 60.0);
    }
    println!(
        "  (the SLO burn alert keeps its production windows, 1 h and 5 m: over a few\n   minutes of data they hold everything since the start, so it fires as soon as\n   the error ratio passes 14.4 × the 0.1 % budget)"
    );

    let affected = orders
        .iter()
        .filter(|o| o.at > fault + Duration::from_secs(1) && o.status == "processing")
        .nth(2)
        .map(|o| o.order_id.clone());
    match (affected, &stack.logs, &stack.collector) {
        (Some(order), Some(logs), Some(collector)) => {
            lookup(&order, logs, collector).await?;
        }
        (None, _, _) => println!("\nno affected order (did the fault reach payment?)"),
        _ => {
            println!("\nthe order → trace lookup needs VictoriaLogs and the Collector (see above)")
        }
    }

    if std::io::stdin().is_terminal() {
        println!("\nThe stack stays up for you to explore. Press Enter to stop it.");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    stack.stop_services();
    Ok(())
}

async fn lookup(
    order: &str,
    logs: &observe_stack::VictoriaLogs,
    collector: &observe_stack::Collector,
) -> Result<(), BoxError> {
    // Give the pipelines a moment: batch delays and the tail sampler's wait.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let by_order = format!("order_id:=\"{order}\"");
    let lines = logs.query(&by_order).await?;
    println!("\n== from the order id in the support ticket to the cause ==");
    println!("$ {}", logs.curl(&by_order));
    let mut trace_id = String::new();
    let mut lines = lines;
    lines.sort_by(|a, b| {
        let t = |l: &serde_json::Map<String, serde_json::Value>| {
            l.get("_time")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        t(a).cmp(&t(b))
    });
    for l in &lines {
        let f = |k: &str| l.get(k).and_then(|v| v.as_str()).unwrap_or("");
        println!(
            "  {:<8} {:<5} {:<20} trace_id={}",
            f("service.name"),
            f("severity_text"),
            f("event_name"),
            f("trace_id")
        );
        if trace_id.is_empty() {
            trace_id = f("trace_id").to_owned();
        }
    }
    if trace_id.is_empty() {
        println!("  (no lines yet)");
        return Ok(());
    }
    let jaeger = collector.jaeger();
    println!("\n$ curl -s {}/api/traces/{trace_id}", jaeger.url());
    match jaeger.trace(&trace_id).await? {
        Some(t) => waterfall(&t),
        None => println!("  (not in the trace store yet)"),
    }
    println!("\n  Jaeger UI: {}/trace/{trace_id}", jaeger.url());
    println!(
        "  every line of the request: {}",
        logs.curl(&format!("trace_id:=\"{trace_id}\""))
    );
    Ok(())
}
