//! A flow: named steps in plain async Rust, each with assertions, a latency
//! objective and a timeout. A run stops at the first failing step.

use super::http::Http;
use super::metrics::SyntheticInstruments;
use super::report::{
    BoxFuture, Failure, FlowError, StepError, StepFailed, StepOutcome, StepReport, OUTSIDE_STEPS,
};
use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tracing::Instrument;

type FlowFn = dyn Fn(FlowContext) -> BoxFuture<'static, Result<(), FlowError>> + Send + Sync;

/// A named user flow: an async function of a [`FlowContext`] whose steps are
/// [`FlowContext::step`] calls.
///
/// ```
/// use observe_synthetic::{Flow, Step};
///
/// let flow = Flow::new("checkout", |ctx| async move {
///     let order_id = ctx
///         .step(Step::new("create_order"), async { Ok("ord_1".to_owned()) })
///         .await?;
///     ctx.step("confirm", async move {
///         observe_synthetic::expect_eq("order id", "ord_1", order_id.as_str())?;
///         Ok(())
///     })
///     .await?;
///     Ok(())
/// });
/// assert_eq!(flow.name(), "checkout");
/// ```
#[derive(Clone)]
pub struct Flow {
    name: Cow<'static, str>,
    run: Arc<FlowFn>,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Flow {
    /// A flow called `name` (the `flow` label: a fixed, low-cardinality name).
    pub fn new<F, Fut>(name: impl Into<Cow<'static, str>>, f: F) -> Self
    where
        F: Fn(FlowContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), FlowError>> + Send + 'static,
    {
        Flow {
            name: name.into(),
            run: Arc::new(move |ctx| Box::pin(f(ctx))),
        }
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_cow(&self) -> Cow<'static, str> {
        self.name.clone()
    }

    pub(crate) fn start(&self, ctx: FlowContext) -> BoxFuture<'static, Result<(), FlowError>> {
        (self.run)(ctx)
    }
}

/// A step's name, latency objective and timeout.
///
/// ```
/// use std::time::Duration;
/// use observe_synthetic::Step;
///
/// let pay = Step::new("pay")
///     .objective(Duration::from_millis(800))
///     .timeout(Duration::from_secs(5));
/// assert_eq!(pay.name(), "pay");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    name: Cow<'static, str>,
    objective: Option<Duration>,
    timeout: Option<Duration>,
}

impl Step {
    /// A step called `name` (the `step` label), no objective, the runner's timeout.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Step {
            name: name.into(),
            objective: None,
            timeout: None,
        }
    }

    /// The step fails when it takes longer than `d` (its latency objective).
    pub fn objective(mut self, d: Duration) -> Self {
        self.objective = Some(d);
        self
    }

    /// Overrides the runner's per-step timeout for this step.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl From<&'static str> for Step {
    fn from(name: &'static str) -> Self {
        Step::new(name)
    }
}

impl From<String> for Step {
    fn from(name: String) -> Self {
        Step::new(name)
    }
}

pub(crate) struct RunState {
    pub(crate) steps: Vec<StepReport>,
    pub(crate) failure: Option<Failure>,
    /// The step running now: name, start, span.
    pub(crate) current: Option<(Cow<'static, str>, Instant, tracing::Span)>,
}

pub(crate) struct Inner {
    pub(crate) flow: Cow<'static, str>,
    pub(crate) region: Cow<'static, str>,
    pub(crate) http: Http,
    pub(crate) step_timeout: Duration,
    pub(crate) root: tracing::Span,
    pub(crate) instruments: Option<Arc<SyntheticInstruments>>,
    pub(crate) state: Mutex<RunState>,
}

/// What a flow's steps get from the runner: the HTTP client, the flow and
/// region names, and [`step`](Self::step). Cloning is cheap.
#[derive(Clone)]
pub struct FlowContext {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FlowContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowContext")
            .field("flow", &self.inner.flow)
            .field("region", &self.inner.region)
            .finish_non_exhaustive()
    }
}

impl FlowContext {
    pub(crate) fn new(inner: Inner) -> Self {
        FlowContext {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, RunState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The HTTP client: each request carries the current step's
    /// `traceparent` and baggage `synthetic=true`.
    pub fn http(&self) -> &Http {
        &self.inner.http
    }

    /// The flow's name.
    pub fn flow(&self) -> &str {
        &self.inner.flow
    }

    /// The region this runner checks from.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// Runs one step: a child span of the run named after the step, the
    /// step's timeout, its latency objective, panics caught. Returns the
    /// body's value, or the failure; once a step has failed, later steps do
    /// not run and return that first failure.
    pub async fn step<T, F>(&self, step: impl Into<Step>, body: F) -> Result<T, StepFailed>
    where
        F: Future<Output = Result<T, StepError>>,
    {
        let step = step.into();
        let span = tracing::info_span!(
            target: "observe::synthetic",
            parent: &self.inner.root,
            "synthetic.step",
            otel.name = %step.name,
            step = %step.name,
        );
        let start = Instant::now();
        {
            let mut st = self.state();
            if let Some(f) = &st.failure {
                return Err(StepFailed(Box::new(f.clone())));
            }
            st.current = Some((step.name.clone(), start, span.clone()));
        }
        let timeout = step.timeout.unwrap_or(self.inner.step_timeout);
        let res =
            tokio::time::timeout(timeout, CatchUnwind::new(body.instrument(span.clone()))).await;
        let elapsed = start.elapsed();
        let failure = |outcome, reason, assertion| Failure {
            step: step.name.clone(),
            outcome,
            reason,
            assertion,
        };
        let result = match res {
            Err(_) => Err(failure(
                StepOutcome::Timeout,
                format!("timed out after {}", secs(timeout)),
                None,
            )),
            Ok(Err(panic)) => Err(failure(
                StepOutcome::Panic,
                format!("panicked: {panic}"),
                None,
            )),
            Ok(Ok(Err(e))) => {
                let assertion = match &e {
                    StepError::Assertion(a) => Some(a.clone()),
                    _ => None,
                };
                Err(failure(StepOutcome::Failure, e.to_string(), assertion))
            }
            Ok(Ok(Ok(_))) if step.objective.is_some_and(|o| elapsed > o) => Err(failure(
                StepOutcome::Failure,
                format!(
                    "took {}, over its latency objective of {}",
                    secs(elapsed),
                    secs(step.objective.unwrap_or_default())
                ),
                None,
            )),
            Ok(Ok(Ok(v))) => Ok(v),
        };
        let (outcome, recorded) = match &result {
            Ok(_) => (StepOutcome::Success, None),
            Err(f) => (f.outcome, Some(f.clone())),
        };
        self.finish_step(step.name.clone(), &span, outcome, elapsed, recorded);
        result.map_err(|f| StepFailed(Box::new(f)))
    }

    fn finish_step(
        &self,
        name: Cow<'static, str>,
        span: &tracing::Span,
        outcome: StepOutcome,
        elapsed: Duration,
        failure: Option<Failure>,
    ) {
        let _ = observe_core::span::with_span(span, |mut h| {
            h.set_attribute(opentelemetry::KeyValue::new(
                "synthetic.outcome",
                outcome.as_str(),
            ));
            match &failure {
                Some(f) => h.set_error(f.to_string()),
                None => h.set_ok(),
            }
        });
        if let Some(i) = &self.inner.instruments {
            i.step(
                &self.inner.flow,
                &name,
                &self.inner.region,
                outcome,
                elapsed.as_secs_f64(),
            );
        }
        let mut st = self.state();
        st.current = None;
        st.steps.push(StepReport {
            name,
            outcome,
            duration: elapsed,
        });
        if st.failure.is_none() {
            st.failure = failure;
        }
    }

    /// Records a failure that happened outside a finished step: the run
    /// timed out or panicked, or the flow returned its own error. A step in
    /// progress is recorded as failed with `outcome`.
    pub(crate) fn fail_outside(&self, outcome: StepOutcome, reason: String) {
        let current = {
            let mut st = self.state();
            if st.failure.is_some() {
                return;
            }
            st.current.take()
        };
        match current {
            Some((name, start, span)) => {
                let failure = Failure {
                    step: name.clone(),
                    outcome,
                    reason,
                    assertion: None,
                };
                self.finish_step(name, &span, outcome, start.elapsed(), Some(failure));
            }
            None => {
                if let Some(i) = &self.inner.instruments {
                    i.outside_steps(&self.inner.flow, &self.inner.region, outcome);
                }
                self.state().failure = Some(Failure {
                    step: Cow::Borrowed(OUTSIDE_STEPS),
                    outcome,
                    reason,
                    assertion: None,
                });
            }
        }
    }
}

/// Seconds with millisecond precision: `1.250 s`.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Polls a future, turning a panic into `Err(message)`.
pub(crate) struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

impl<F> CatchUnwind<F> {
    pub(crate) fn new(f: F) -> Self {
        CatchUnwind { inner: Box::pin(f) }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}
