//! [`TailSampling`], the span processor, and its builder.

use super::config::{DecisionCacheConfig, Policy, TailSamplingConfig, TailSamplingError};
use super::counters::TailCounters;
use super::policy::Rules;
use super::state::{lock, read, run, write, Decisions, IdHash, Inner, Shard, Worker};
use super::SHARDS;
use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The tail-sampling span processor. See the [module docs](crate::export::tail).
///
/// ```
/// use observe_core::export::tail::TailSampling;
/// use observe_core::opentelemetry_sdk::trace::{BatchSpanProcessor, InMemorySpanExporter};
///
/// // Kept traces go on to a batch processor and its exporter (OTLP in production).
/// let batch = BatchSpanProcessor::builder(InMemorySpanExporter::default()).build();
/// let tail = TailSampling::builder(batch).build()?;
/// assert_eq!(tail.counters().pending_traces(), 0);
/// # Ok::<(), observe_core::export::tail::TailSamplingError>(())
/// ```
pub struct TailSampling {
    pub(super) inner: Arc<Inner>,
    pub(super) config: TailSamplingConfig,
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for TailSampling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TailSampling")
            .field("config", &self.config)
            .field("counters", &self.inner.counters)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TailSampling`]; starts from observe's defaults.
#[derive(Debug)]
pub struct TailSamplingBuilder {
    pub(super) downstream: Box<dyn SpanProcessor>,
    pub(super) config: TailSamplingConfig,
}

impl TailSampling {
    /// A builder with observe's defaults, forwarding kept traces to `downstream`.
    pub fn builder(downstream: impl SpanProcessor + 'static) -> TailSamplingBuilder {
        TailSamplingBuilder {
            downstream: Box::new(downstream),
            config: TailSamplingConfig::default(),
        }
    }

    /// The decision counters (shared: keep the `Arc` to read them later).
    pub fn counters(&self) -> Arc<TailCounters> {
        Arc::clone(&self.inner.counters)
    }

    /// The configuration in force.
    pub fn config(&self) -> &TailSamplingConfig {
        &self.config
    }

    pub(super) fn stop_thread(&self, timeout: Duration) -> OTelSdkResult {
        lock(&self.inner.worker).stop = true;
        self.inner.wake.notify_all();
        let Some(handle) = lock(&self.thread).take() else {
            return Ok(());
        };
        let start = Instant::now();
        while !handle.is_finished() {
            if start.elapsed() >= timeout {
                return Err(OTelSdkError::Timeout(timeout));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        handle
            .join()
            .map_err(|_| OTelSdkError::InternalFailure("tail sampling thread panicked".into()))
    }
}

impl TailSamplingBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: TailSamplingConfig) -> Self {
        self.config = config;
        self
    }

    /// `decision_wait`: wait after a trace's first local root ended (default 1 s).
    pub fn decision_wait(mut self, wait: Duration) -> Self {
        self.config.decision_wait = wait;
        self
    }

    /// `num_traces`: most traces buffered at once (default 10 000).
    pub fn num_traces(mut self, n: usize) -> Self {
        self.config.num_traces = n;
        self
    }

    /// `decision_cache`: recent decisions remembered for late spans.
    pub fn decision_cache(
        mut self,
        sampled_cache_size: usize,
        non_sampled_cache_size: usize,
    ) -> Self {
        self.config.decision_cache = DecisionCacheConfig {
            sampled_cache_size,
            non_sampled_cache_size,
        };
        self
    }

    /// `policies`: replaces the default policies.
    pub fn policies(mut self, policies: impl IntoIterator<Item = Policy>) -> Self {
        self.config.policies = policies.into_iter().collect();
        self
    }

    /// Appends one policy to the current list (the defaults, unless replaced).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.config.policies.push(policy);
        self
    }

    /// Observe only: longest wait for a local root (default 30 s).
    pub fn root_wait(mut self, wait: Duration) -> Self {
        self.config.root_wait = wait;
        self
    }

    /// Observe only: a trace with this many spans is decided at once (default 1 000).
    pub fn max_spans_per_trace(mut self, n: usize) -> Self {
        self.config.max_spans_per_trace = n;
        self
    }

    /// Checks the policies and starts the decision thread.
    pub fn build(self) -> Result<TailSampling, TailSamplingError> {
        let cfg = self.config;
        let rules = Rules::new(&cfg.policies)?;
        if cfg.num_traces == 0 {
            return Err(TailSamplingError::Zero {
                field: "num_traces",
            });
        }
        if cfg.max_spans_per_trace == 0 {
            return Err(TailSamplingError::Zero {
                field: "max_spans_per_trace",
            });
        }
        let map_hash = IdHash::random();
        let per_shard = |n: usize| n.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    pending: HashMap::with_hasher(map_hash),
                    decided: Decisions {
                        map: HashMap::with_hasher(map_hash),
                        kept: VecDeque::new(),
                        dropped: VecDeque::new(),
                        kept_cap: per_shard(cfg.decision_cache.sampled_cache_size),
                        dropped_cap: per_shard(cfg.decision_cache.non_sampled_cache_size),
                    },
                    due: VecDeque::new(),
                })
            })
            .collect();
        let inner = Arc::new(Inner {
            shards,
            shard_hash: IdHash::random(),
            rules,
            decision_wait: cfg.decision_wait,
            root_wait: cfg.root_wait,
            num_traces: cfg.num_traces,
            max_spans: cfg.max_spans_per_trace,
            tick: (cfg.decision_wait / 8)
                .clamp(Duration::from_millis(1), Duration::from_millis(100)),
            scan_every: (cfg.root_wait / 8).clamp(Duration::from_millis(1), Duration::from_secs(1)),
            counters: Arc::new(TailCounters::new(&cfg.policies)),
            downstream: RwLock::new(self.downstream),
            resource: RwLock::new(Resource::builder_empty().build()),
            deciding: Mutex::new(Instant::now()),
            worker: Mutex::new(Worker { stop: false }),
            wake: Condvar::new(),
            shut: AtomicBool::new(false),
        });
        let for_thread = Arc::clone(&inner);
        let handle = std::thread::Builder::new()
            .name("observe-tail-sampling".into())
            .spawn(move || run(for_thread))
            .map_err(TailSamplingError::Thread)?;
        Ok(TailSampling {
            inner,
            config: cfg,
            thread: Mutex::new(Some(handle)),
        })
    }
}

impl SpanProcessor for TailSampling {
    /// Called on the thread that starts a span (OpenTelemetry API spans only;
    /// observe's layer does not call it). Passes it to the downstream
    /// processor; does not block.
    fn on_start(&self, span: &mut Span, cx: &Context) {
        read(&self.inner.downstream).on_start(span, cx);
    }

    /// Called on the thread that ended the span: a request's. Locks one of 16
    /// shards for a hash-map lookup and a push (no allocation beyond the
    /// buffer's amortised growth); never waits for the decision thread.
    /// Overflowed traces and late spans of kept traces are passed to the
    /// downstream `on_end` from this thread.
    fn on_end(&self, span: SpanData) {
        self.inner.on_end(span);
    }

    /// Called from any thread (the telemetry guard's flush). Decides every
    /// pending trace now, as if its wait had elapsed, forwards the kept ones,
    /// then flushes downstream: blocks for as long as that takes.
    fn force_flush(&self) -> OTelSdkResult {
        if self.inner.shut.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        self.inner.decide(Instant::now(), true);
        read(&self.inner.downstream).force_flush()
    }

    /// Called once, from any thread (the telemetry guard). Decides every
    /// pending trace, stops the decision thread, then shuts down downstream
    /// with what is left of `timeout`. Blocks; later spans are ignored.
    /// A second call returns `AlreadyShutdown`.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let start = Instant::now();
        if self.inner.shut.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        self.inner.decide(Instant::now(), true);
        let stopped = self.stop_thread(timeout);
        let left = timeout.saturating_sub(start.elapsed());
        let down = read(&self.inner.downstream).shutdown_with_timeout(left);
        stopped.and(down)
    }

    /// Called once while the pipeline is built, before any span. Attribute
    /// policies also match the resource's attributes; passed downstream.
    fn set_resource(&mut self, resource: &Resource) {
        *write(&self.inner.resource) = resource.clone();
        write(&self.inner.downstream).set_resource(resource);
    }
}

impl Drop for TailSampling {
    /// Decides what is pending and shuts down downstream, unless already shut down.
    fn drop(&mut self) {
        if !self.inner.shut.load(Ordering::Acquire) {
            let _ = self.shutdown_with_timeout(Duration::from_secs(5));
        }
        let _ = self.stop_thread(Duration::from_secs(1));
    }
}
