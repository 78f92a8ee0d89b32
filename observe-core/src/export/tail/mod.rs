//! Tail-based sampling: a span processor that decides whether to keep a trace
//! after its local part has ended, and forwards every span of a kept trace to
//! the next processor.
//!
//! ```
//! use observe_core::export::tail::TailSampling;
//! use observe_core::opentelemetry::trace::Status;
//! use observe_core::opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor, SpanProcessor};
//! # use observe_core::opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState};
//! # use observe_core::opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
//! # use std::time::{Duration, UNIX_EPOCH};
//! # fn span(trace: u128, id: u64, parent: u64, name: &'static str, status: Status) -> SpanData {
//! #     SpanData {
//! #         span_context: SpanContext::new(TraceId::from(trace), SpanId::from(id), TraceFlags::SAMPLED, false, TraceState::default()),
//! #         parent_span_id: SpanId::from(parent), parent_span_is_remote: false,
//! #         span_kind: SpanKind::Internal, name: name.into(),
//! #         start_time: UNIX_EPOCH, end_time: UNIX_EPOCH + Duration::from_millis(40),
//! #         attributes: Vec::new(), dropped_attributes_count: 0,
//! #         events: SpanEvents::default(), links: SpanLinks::default(),
//! #         status, instrumentation_scope: Default::default(),
//! #     }
//! # }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let exporter = InMemorySpanExporter::default();
//! // Observe's defaults: errors, slow (2 s), synthetic, 10% of the rest.
//! let tail = TailSampling::builder(SimpleSpanProcessor::new(exporter.clone())).build()?;
//!
//! let trace = 0x4bf92f3577b34da6a3ce929d0e0e4736; // not in the healthy 10%
//! tail.on_end(span(trace, 2, 1, "charge_card", Status::error("gateway returned 504")));
//! tail.on_end(span(trace, 1, 0, "checkout", Status::Unset)); // the local root
//! tail.force_flush()?; // decide now instead of after `decision_wait`
//!
//! let kept: Vec<_> = exporter.get_finished_spans()?.iter().map(|s| s.name.to_string()).collect();
//! println!("{kept:?} kept by {:?}", tail.counters().decided_by("errors"));
//! # assert_eq!(kept, ["charge_card", "checkout"]);
//! # Ok(())
//! # }
//! ```
//!
//! prints
//!
//! ```text
//! ["charge_card", "checkout"] kept by 1
//! ```
//!
//! # The pipeline
//!
//! ```text
//!  application threads (on_end)           the "observe-tail-sampling" thread
//!  ─────────────────────────────           ──────────────────────────────────
//!  span ends ─▶ shard[trace id] (1 of 16 mutexes)
//!                ├─ pending trace: buffer the SpanData;
//!                │    first local root ended: due = now + decision_wait
//!                ├─ decided recently: follow the decision ─────────────┐
//!                ├─ num_traces or max_spans_per_trace reached:         │
//!                │    decide now, count the overflow ──────────────────┤
//!                └─ new trace: start buffering                         │
//!                                           every tick (≤ 100 ms):     │
//!                                           due traces ─▶ policies     │
//!                                             keep ────────────────────┤
//!                                             drop ─▶ counted          ▼
//!                          downstream.on_end(span) for every span of the trace, in end order
//!                          (usually observe's SpanPipeline ▶ OTLP exporter)
//! ```
//!
//! # When a trace is decided
//!
//! - `decision_wait` after its first *local root* ended: a span whose parent
//!   is invalid (a new trace) or remote (a request from another service).
//!   Several local roots of one trace (several requests of one trace reaching
//!   this service) are decided together, at the first one's deadline.
//! - `root_wait` after its first span arrived, if no local root has ended by
//!   then (a long-running request, or a root that is not recorded).
//! - At once when `num_traces` traces are pending (the new trace is decided on
//!   its first span) or when a trace reaches `max_spans_per_trace` spans: both
//!   are counted as overflow.
//! - On [`force_flush`](opentelemetry_sdk::trace::SpanProcessor::force_flush) and
//!   [`shutdown`](opentelemetry_sdk::trace::SpanProcessor::shutdown_with_timeout): everything pending,
//!   as if the wait had elapsed.
//!
//! Spans that end after their trace was decided follow the decision while it
//! is among the recent decisions (`decision_cache`); a kept late span is
//! forwarded at once, from the thread that ended it. Spans without the
//! sampled flag are ignored (head sampling already dropped their trace).
//!
//! # Policies
//!
//! They mirror the OpenTelemetry Collector's `tail_sampling` processor: same
//! type names, same fields, same combination (a trace is kept when any policy
//! samples it, unless a `drop` policy matched). `docs/sampling.md` has the
//! field-by-field mapping and the differences; `docs/collector/` carries the
//! same defaults as Collector configuration.
//!
//! | policy (`name`) | Collector `type` | keeps |
//! |---|---|---|
//! | `errors` | `status_code` | any span with status Error |
//! | `slow` | `latency` | earliest start to latest end ≥ 2000 ms |
//! | `synthetic` | `boolean_attribute` | a span or resource attribute `synthetic = true` |
//! | `healthy` | `probabilistic` | 10% of trace ids: the SDK's `TraceIdRatioBased` rule, so every service keeps the same ones |
//!
//! # Customization
//!
//! ```
//! use observe_core::export::tail::{Policy, StatusCode, TailSampling};
//! use observe_core::opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
//! use std::time::Duration;
//!
//! let tail = TailSampling::builder(SimpleSpanProcessor::new(InMemorySpanExporter::default()))
//!     .decision_wait(Duration::from_secs(2))
//!     .num_traces(20_000)
//!     .policies([
//!         Policy::status_code("errors", [StatusCode::Error]),
//!         Policy::latency("slow", 500),
//!         Policy::string_attribute("vip", "customer.tier", ["gold", "platinum"]),
//!         Policy::drop("no-health-checks", [Policy::string_attribute("health", "http.route", ["/health"])]),
//!         Policy::probabilistic("healthy", 5.0),
//!     ])
//!     .build()?;
//! let counters = tail.counters(); // Arc: keep it to report metrics after moving `tail`
//! # assert_eq!(counters.traces_kept(), 0);
//! # Ok::<(), observe_core::export::tail::TailSamplingError>(())
//! ```

mod config;
mod counters;
mod policy;
mod processor;
mod state;
#[cfg(test)]
mod tests;

pub use config::*;
pub use counters::{TailCounters, TailInstruments};
pub use processor::{TailSampling, TailSamplingBuilder};

use std::time::Duration;

/// Default `decision_wait`: how long after a trace's first local root ended.
pub const DEFAULT_DECISION_WAIT: Duration = Duration::from_secs(1);
/// Default `num_traces`: most traces pending at once.
pub const DEFAULT_NUM_TRACES: usize = 10_000;
/// Default `decision_cache.sampled_cache_size`.
pub const DEFAULT_SAMPLED_CACHE_SIZE: usize = 10_000;
/// Default `decision_cache.non_sampled_cache_size`.
pub const DEFAULT_NON_SAMPLED_CACHE_SIZE: usize = 50_000;
/// Default `root_wait` (observe only): the Collector's default `decision_wait`.
pub const DEFAULT_ROOT_WAIT: Duration = Duration::from_secs(30);
/// Default `max_spans_per_trace` (observe only).
pub const DEFAULT_MAX_SPANS_PER_TRACE: usize = 1_000;
/// Default `threshold_ms` of the `slow` policy.
pub const DEFAULT_LATENCY_THRESHOLD_MS: u64 = 2_000;
/// Default `sampling_percentage` of the `healthy` policy.
pub const DEFAULT_SAMPLING_PERCENTAGE: f64 = 10.0;

pub(super) const SHARDS: usize = 16;
