//! The seed's stack on 127.0.0.1, for observe's tests and demos.
//!
//! ```text
//!  services ── OTLP ──▶ Collector (Jaeger v2) ── traces ─▶ trace store ◀── Jaeger query API
//!                        docs/collector/         ── metrics ▶ prometheus exporter ◀── Prometheus ──▶ Alertmanager
//!                        collector.yaml          ── logs ───▶ VictoriaLogs ◀── LogsQL
//! ```
//!
//! Every engine is a real program started as a process on free 127.0.0.1
//! ports, stopped when its handle is dropped, and read only through its own
//! API: [`Jaeger`] (`/api/traces`), [`VictoriaLogs`] (`/select/logsql/query`),
//! [`Prometheus`] (`/api/v1/query`, `/api/v1/alerts`) and [`Alertmanager`]
//! (`/api/v2/alerts`).
//!
//! Jaeger and VictoriaLogs are built from the pinned Go modules under
//! `tools/` by `tools/build` into `target/tools/bin`; Prometheus and
//! Alertmanager come from Debian (`prometheus`, `prometheus-alertmanager`).
//! [`Engine::locate`] finds each one, and says how to get it when it is
//! missing.
//!
//! ```no_run
//! # async fn demo() -> Result<(), observe_stack::Error> {
//! use observe_stack::{Collector, CollectorOptions, VictoriaLogs};
//!
//! let logs = VictoriaLogs::start().await?;
//! let collector = Collector::start(CollectorOptions::new().logs_to(logs.addr())).await?;
//! // Point a service at it with the standard variables:
//! println!("OTEL_EXPORTER_OTLP_ENDPOINT={}", collector.otlp_http_url());
//! let traces = collector.jaeger().find_traces("payment", &[("order_id", "ord_1")]).await?;
//! # let _ = traces;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod alertmanager;
mod collector;
mod error;
mod http;
mod jaeger;
mod logs;
mod process;
mod prometheus;

pub use alertmanager::{Alertmanager, ReceivedAlert};
pub use collector::{sum_series, Collector, CollectorOptions, COLLECTOR_CONFIG};
pub use error::Error;
pub use jaeger::{Jaeger, JaegerSpan, JaegerTrace};
pub use logs::VictoriaLogs;
pub use process::{free_port, free_ports, Engine, Process};
pub use prometheus::{AlertState, Prometheus, PrometheusOptions, ScrapeTarget};
