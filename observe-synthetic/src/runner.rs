//! The runner: runs a flow once or on a schedule, records its telemetry and
//! alerts after N consecutive failed runs.

use super::alert::{AlertSink, Alerting};
use super::flow::{panic_message, secs, CatchUnwind, Flow, FlowContext, Inner, RunState};
use super::http::{default_transport, make_transport, Http, MakeTransport};
use super::metrics::SyntheticInstruments;
use super::report::{ConfigError, Failure, FlowError, StepOutcome, StepReport};
use hyper_util::client::legacy::connect::Connect;
use observe_core::span::{with_remote_context, Propagated, RemoteContext};
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument;

/// Default time between runs.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default deadline of one step.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of consecutive failed runs that fires the alert (the
/// generated Prometheus rule's default too).
pub const DEFAULT_ALERT_AFTER: u32 = 2;
/// Default `region` label.
pub const DEFAULT_REGION: &str = "default";
/// Default `severity` label of the alert.
pub const DEFAULT_SEVERITY: &str = "critical";
/// Longest flow, region or severity name.
pub const MAX_NAME_LEN: usize = 128;

/// The result of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// The flow's name.
    pub flow: Cow<'static, str>,
    /// The runner's region.
    pub region: Cow<'static, str>,
    /// The run's trace id (32 hex digits), when observe is installed.
    pub trace_id: Option<String>,
    /// When the run started.
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// The steps that ran, in order (the failing one last).
    pub steps: Vec<StepReport>,
    /// The first failure; `None` when the run succeeded.
    pub failure: Option<Failure>,
}

impl RunReport {
    /// Whether every step passed.
    pub fn is_success(&self) -> bool {
        self.failure.is_none()
    }
}

/// Counters kept across runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunnerState {
    /// Runs so far.
    pub runs: u64,
    /// Failed runs so far.
    pub failed_runs: u64,
    /// Failed runs since the last success.
    pub consecutive_failures: u32,
    /// Whether the alert is firing.
    pub alert_firing: bool,
}

type OnRun = Box<dyn FnMut(&RunReport) + Send>;

enum InstrumentSource {
    Fixed(Arc<SyntheticInstruments>),
    Global(OnceLock<Arc<SyntheticInstruments>>),
}

/// Configures a [`Runner`].
#[must_use]
pub struct RunnerBuilder {
    flow: Flow,
    interval: Duration,
    jitter: Duration,
    step_timeout: Duration,
    run_timeout: Option<Duration>,
    region: Cow<'static, str>,
    alert_after: u32,
    severity: Cow<'static, str>,
    sinks: Vec<Box<dyn AlertSink>>,
    meter: Option<Meter>,
    transport: Option<MakeTransport>,
    on_run: Option<OnRun>,
}

impl std::fmt::Debug for RunnerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerBuilder")
            .field("flow", &self.flow)
            .field("interval", &self.interval)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl RunnerBuilder {
    /// Time between the starts of two runs (default 60 s).
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }

    /// Each run starts up to `d` (uniformly random) after its tick, so that
    /// regions do not hit the service in lockstep (default 0, less than the interval).
    pub fn jitter(mut self, d: Duration) -> Self {
        self.jitter = d;
        self
    }

    /// Deadline of each step unless the step sets its own (default 10 s).
    pub fn step_timeout(mut self, d: Duration) -> Self {
        self.step_timeout = d;
        self
    }

    /// Deadline of a whole run, including code between steps (default: the interval).
    pub fn run_timeout(mut self, d: Duration) -> Self {
        self.run_timeout = Some(d);
        self
    }

    /// The `region` label (default `default`).
    pub fn region(mut self, region: impl Into<Cow<'static, str>>) -> Self {
        self.region = region.into();
        self
    }

    /// Fires `SyntheticCheckFailed` after `n` consecutive failed runs (default 2).
    pub fn alert_after(mut self, n: u32) -> Self {
        self.alert_after = n;
        self
    }

    /// The alert's `severity` label (default `critical`).
    pub fn severity(mut self, severity: impl Into<Cow<'static, str>>) -> Self {
        self.severity = severity.into();
        self
    }

    /// Also delivers the alert to `sink` ([`Alertmanager`](super::Alertmanager),
    /// [`Webhook`](super::Webhook) or your own).
    pub fn alert_sink(mut self, sink: impl AlertSink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Records the metrics on `meter` (default: the global meter provider,
    /// which [`init`](observe_core::init) sets to the telemetry's).
    pub fn meter(mut self, meter: Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Connects with `connector` instead of plain-HTTP `HttpConnector`, e.g.
    /// an HTTPS connector from `hyper-rustls`.
    pub fn connector<C>(mut self, connector: C) -> Self
    where
        C: Connect + Clone + Send + Sync + 'static,
    {
        self.transport = Some(make_transport(connector));
        self
    }

    /// Calls `f` after each run (a panic in `f` is caught and ignored).
    pub fn on_run(mut self, f: impl FnMut(&RunReport) + Send + 'static) -> Self {
        self.on_run = Some(Box::new(f));
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Runner, ConfigError> {
        check_name("flow", self.flow.name())?;
        check_name("region", &self.region)?;
        check_name("severity", &self.severity)?;
        let run_timeout = self.run_timeout.unwrap_or(self.interval);
        for (field, d) in [
            ("interval", self.interval),
            ("step_timeout", self.step_timeout),
            ("run_timeout", run_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration { field });
            }
        }
        if self.jitter >= self.interval {
            return Err(ConfigError::JitterTooLarge {
                jitter: self.jitter,
                interval: self.interval,
            });
        }
        if self.alert_after == 0 {
            return Err(ConfigError::ZeroAlertAfter);
        }
        // A firing alert stays active this long unless re-sent (Prometheus
        // uses 4 evaluation intervals); at least a minute.
        let expiry = self.interval.saturating_mul(4).max(Duration::from_secs(60));
        Ok(Runner {
            flow: self.flow,
            interval: self.interval,
            jitter: self.jitter,
            step_timeout: self.step_timeout,
            run_timeout,
            region: self.region,
            alerting: Alerting::new(
                self.sinks,
                self.alert_after,
                self.severity.into_owned(),
                expiry,
            ),
            instruments: match self.meter {
                Some(m) => InstrumentSource::Fixed(Arc::new(SyntheticInstruments::new(&m))),
                None => InstrumentSource::Global(OnceLock::new()),
            },
            current: std::sync::Mutex::new(None),
            transport: self.transport.unwrap_or_else(default_transport),
            on_run: self.on_run,
            state: RunnerState::default(),
            jitter_keys: std::collections::hash_map::RandomState::new(),
            jitter_draws: 0,
        })
    }
}

fn check_name(field: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() || value.len() > MAX_NAME_LEN || value.chars().any(char::is_control) {
        return Err(ConfigError::InvalidName {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Runs a [`Flow`] once ([`run_once`](Self::run_once)) or on a schedule
/// ([`run_until`](Self::run_until), [`run_forever`](Self::run_forever)).
///
/// Each run is one trace: a root span `synthetic <flow>` and a child span per
/// step. A run that fails, panics or hangs past its timeout is a failed run
/// with its reason; the runner itself keeps going. Needs a Tokio runtime
/// with the time driver.
pub struct Runner {
    flow: Flow,
    interval: Duration,
    jitter: Duration,
    step_timeout: Duration,
    run_timeout: Duration,
    region: Cow<'static, str>,
    alerting: Alerting,
    instruments: InstrumentSource,
    /// Instruments on the current telemetry's meter, by telemetry id.
    current: std::sync::Mutex<Option<(u64, Arc<SyntheticInstruments>)>>,
    transport: MakeTransport,
    on_run: Option<OnRun>,
    state: RunnerState,
    /// Randomly keyed: each run's jitter is a hash of the run's number.
    jitter_keys: std::collections::hash_map::RandomState,
    jitter_draws: u64,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("flow", &self.flow)
            .field("interval", &self.interval)
            .field("region", &self.region)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// Configures a runner for `flow`.
    pub fn builder(flow: Flow) -> RunnerBuilder {
        RunnerBuilder {
            flow,
            interval: DEFAULT_INTERVAL,
            jitter: Duration::ZERO,
            step_timeout: DEFAULT_STEP_TIMEOUT,
            run_timeout: None,
            region: Cow::Borrowed(DEFAULT_REGION),
            alert_after: DEFAULT_ALERT_AFTER,
            severity: Cow::Borrowed(DEFAULT_SEVERITY),
            sinks: Vec::new(),
            meter: None,
            transport: None,
            on_run: None,
        }
    }

    /// Counters kept across runs.
    pub fn state(&self) -> RunnerState {
        self.state
    }

    /// Runs the flow once now, updates the alert state and delivers the
    /// alert if it fires or resolves.
    pub async fn run_once(&mut self) -> RunReport {
        let report = self.execute().await;
        let s = &mut self.state;
        s.runs += 1;
        if report.is_success() {
            s.consecutive_failures = 0;
        } else {
            s.failed_runs += 1;
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        }
        let alert = self.alerting.after_run(
            &report.flow,
            &report.region,
            report.started,
            s.consecutive_failures,
            report.failure.as_ref(),
            report.trace_id.as_deref(),
        );
        if let Some(a) = alert {
            self.alerting.deliver(&a).await;
        }
        self.state.alert_firing = self.alerting.is_firing();
        if let Some(f) = self.on_run.as_mut() {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| f(&report)));
        }
        report
    }

    /// Runs on schedule until `shutdown` completes: the first run now (plus
    /// jitter), then one per interval, measured from start to start. A run
    /// that overruns its slot makes the runner skip the missed ticks; a run
    /// in progress finishes before shutdown.
    pub async fn run_until<S: Future<Output = ()>>(&mut self, shutdown: S) {
        tokio::pin!(shutdown);
        let start = tokio::time::Instant::now();
        let mut tick: u32 = 0;
        loop {
            let at = start + self.interval.saturating_mul(tick) + self.next_jitter();
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::time::sleep_until(at) => {}
            }
            self.run_once().await;
            let elapsed = start.elapsed().as_nanos();
            let next = u32::try_from(elapsed / self.interval.as_nanos().max(1))
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            let next = next.max(tick.saturating_add(1));
            if next > tick.saturating_add(1) {
                observe_core::event!(
                    tracing::Level::WARN,
                    "synthetic_runs_skipped",
                    flow = self.flow.name(),
                    region = &*self.region,
                    skipped = next - tick - 1,
                );
            }
            tick = next;
        }
    }

    /// Runs on schedule forever.
    pub async fn run_forever(&mut self) {
        self.run_until(std::future::pending()).await;
    }

    fn next_jitter(&mut self) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        use std::hash::BuildHasher;
        self.jitter_draws += 1;
        let z = self.jitter_keys.hash_one(self.jitter_draws);
        let nanos = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(z % nanos.max(1))
    }

    fn instruments(&self) -> Option<Arc<SyntheticInstruments>> {
        match &self.instruments {
            InstrumentSource::Fixed(i) => Some(Arc::clone(i)),
            InstrumentSource::Global(cell) => {
                // The current observe telemetry's meter; the global one outside observe.
                if let Some(signals) = observe_core::signals::current() {
                    let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some((id, i)) = current.as_ref() {
                        if *id == signals.id() {
                            return Some(Arc::clone(i));
                        }
                    }
                    let i = Arc::new(SyntheticInstruments::new(signals.meter()));
                    *current = Some((signals.id(), Arc::clone(&i)));
                    return Some(i);
                }
                Some(Arc::clone(cell.get_or_init(|| {
                    Arc::new(SyntheticInstruments::new(
                        &opentelemetry::global::meter_with_scope(
                            observe_core::instrumentation_scope(),
                        ),
                    ))
                })))
            }
        }
    }

    async fn execute(&mut self) -> RunReport {
        let started = SystemTime::now();
        let t0 = Instant::now();
        let flow = self.flow.name_cow();
        let root = root_span(&flow, &self.region);
        let trace_id = observe_core::span::with_span(&root, |s| s.trace_id_hex().to_owned());
        let instruments = self.instruments();
        let ctx = FlowContext::new(Inner {
            flow: flow.clone(),
            region: self.region.clone(),
            http: Http::new((self.transport)(), true),
            step_timeout: self.step_timeout,
            root: root.clone(),
            instruments: instruments.clone(),
            state: Mutex::new(RunState {
                steps: Vec::new(),
                failure: None,
                current: None,
            }),
        });
        let fut = {
            let _e = root.enter();
            std::panic::catch_unwind(AssertUnwindSafe(|| self.flow.start(ctx.clone())))
        };
        match fut {
            Err(p) => ctx.fail_outside(
                StepOutcome::Panic,
                format!("panicked: {}", panic_message(p.as_ref())),
            ),
            Ok(fut) => {
                let res = tokio::time::timeout(
                    self.run_timeout,
                    CatchUnwind::new(fut.instrument(root.clone())),
                )
                .await;
                match res {
                    Err(_) => ctx.fail_outside(
                        StepOutcome::Timeout,
                        format!("run timed out after {}", secs(self.run_timeout)),
                    ),
                    Ok(Err(p)) => ctx.fail_outside(StepOutcome::Panic, format!("panicked: {p}")),
                    Ok(Ok(Err(FlowError::Other(e)))) => {
                        ctx.fail_outside(StepOutcome::Failure, e.to_string());
                    }
                    Ok(Ok(Err(FlowError::Step(_)) | Ok(()))) => {}
                }
            }
        }
        let duration = t0.elapsed();
        let (steps, failure) = {
            let mut st = ctx.state();
            (std::mem::take(&mut st.steps), st.failure.clone())
        };
        drop(ctx);
        if let Some(i) = &instruments {
            i.run(&flow, &self.region, failure.is_none());
        }
        let outcome = failure.as_ref().map_or(StepOutcome::Success, |f| f.outcome);
        let _ = observe_core::span::with_span(&root, |mut h| {
            h.set_attribute(KeyValue::new("synthetic.outcome", outcome.as_str()));
            match &failure {
                Some(f) => h.set_error(f.to_string()),
                None => h.set_ok(),
            }
        });
        let duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        root.in_scope(|| match &failure {
            None => {
                observe_core::event!(tracing::Level::INFO, "synthetic_run_succeeded", duration_ms)
            }
            Some(f) => observe_core::event!(
                tracing::Level::ERROR,
                "synthetic_run_failed",
                step = &*f.step,
                outcome = f.outcome.as_str(),
                reason = f.reason.as_str(),
                duration_ms,
            ),
        });
        RunReport {
            flow,
            region: self.region.clone(),
            trace_id,
            started,
            duration,
            steps,
            failure,
        }
    }
}

/// The root span of a run: a new trace, marked synthetic, whose baggage
/// `synthetic=true` goes out with every request.
fn root_span(flow: &str, region: &str) -> tracing::Span {
    let propagated = Arc::new(Propagated {
        baggage: Some(super::http::SYNTHETIC_BAGGAGE.into()),
        ..Propagated::default()
    });
    with_remote_context(
        RemoteContext {
            synthetic: true,
            propagated: Some(propagated),
            ..RemoteContext::default()
        },
        || {
            tracing::info_span!(
                target: "observe::synthetic",
                parent: None,
                "synthetic",
                otel.name = %format_args!("synthetic {flow}"),
                flow = %flow,
                region = %region,
            )
        },
    )
}
