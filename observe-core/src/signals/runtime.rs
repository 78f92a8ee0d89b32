//! Saturation from the tokio runtime: its stable metrics (no
//! `tokio_unstable` needed) as observable instruments, read when metrics
//! are collected (a scrape or an export), never on a request's path.
//!
//! | OpenTelemetry name | Prometheus name | unit | from |
//! |---|---|---|---|
//! | `tokio.runtime.worker.count` | `tokio_runtime_worker_count` | `{worker}` | `num_workers` |
//! | `tokio.runtime.task.count` | `tokio_runtime_task_count` | `{task}` | `num_alive_tasks` |
//! | `tokio.runtime.global_queue.depth` | `tokio_runtime_global_queue_depth` | `{task}` | `global_queue_depth` |
//! | `tokio.runtime.worker.busy_time` | `tokio_runtime_worker_busy_time_seconds_total` | s | `worker_total_busy_duration`, summed |
//! | `tokio.runtime.worker.park.count` | `tokio_runtime_worker_park_count_total` | `{park}` | `worker_park_count`, summed |
//!
//! The workers' busy share, `rate(busy_time) / worker.count`, is what the
//! generated `HighSaturation` rule watches (`resource="tokio_workers"`).

use super::names::{self, row_of};
use opentelemetry::metrics::Meter;
use tokio::runtime::RuntimeMetrics;

/// Registers the runtime's instruments on `meter` (they live as long as
/// its provider).
pub(crate) fn register(meter: &Meter, handle: &tokio::runtime::Handle) {
    let gauge = |row: &'static names::Instrument, read: fn(&RuntimeMetrics) -> usize| {
        let m = handle.metrics();
        meter
            .u64_observable_gauge(row.name)
            .with_unit(row.unit)
            .with_description(row.description)
            .with_callback(move |o| o.observe(read(&m) as u64, &[]))
            .build();
    };
    gauge(
        row_of!(names::TOKIO_WORKER_COUNT),
        RuntimeMetrics::num_workers,
    );
    gauge(
        row_of!(names::TOKIO_TASK_COUNT),
        RuntimeMetrics::num_alive_tasks,
    );
    gauge(
        row_of!(names::TOKIO_GLOBAL_QUEUE_DEPTH),
        RuntimeMetrics::global_queue_depth,
    );
    #[cfg(target_has_atomic = "64")]
    {
        let row = row_of!(names::TOKIO_WORKER_BUSY_TIME);
        let m = handle.metrics();
        meter
            .f64_observable_counter(row.name)
            .with_unit(row.unit)
            .with_description(row.description)
            .with_callback(move |o| {
                let busy = (0..m.num_workers()).map(|w| m.worker_total_busy_duration(w));
                o.observe(busy.map(|d| d.as_secs_f64()).sum(), &[]);
            })
            .build();
        let row = row_of!(names::TOKIO_WORKER_PARK_COUNT);
        let m = handle.metrics();
        meter
            .u64_observable_counter(row.name)
            .with_unit(row.unit)
            .with_description(row.description)
            .with_callback(move |o| {
                o.observe(
                    (0..m.num_workers()).map(|w| m.worker_park_count(w)).sum(),
                    &[],
                )
            })
            .build();
    }
}
