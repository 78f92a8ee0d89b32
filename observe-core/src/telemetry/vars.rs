//! The OpenTelemetry SDK variables observe reads besides the exporter's
//! (telemetry/otlp.rs): batch processors, metric reader, temporality,
//! propagators, attribute limits and the SDK's own log level. Each is read
//! strictly at init: a value that is set but not one observe accepts is an
//! [`InitError::InvalidVariable`] naming the variable, the value and what
//! is accepted, never a silent default.
//!
//! | variable | default | accepted |
//! |---|---|---|
//! | `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BLRP_SCHEDULE_DELAY` | 5000, 1000 | milliseconds, ≥ 1 |
//! | `OTEL_BSP_EXPORT_TIMEOUT`, `OTEL_BLRP_EXPORT_TIMEOUT` | 30000 | milliseconds, ≥ 1 |
//! | `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BLRP_MAX_QUEUE_SIZE` | 2048 | a count, ≥ 1 |
//! | `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE` | 512 | a count from 1 to the queue size |
//! | `OTEL_METRIC_EXPORT_INTERVAL` | 60000 | milliseconds, ≥ 1 |
//! | `OTEL_METRIC_EXPORT_TIMEOUT` | 30000 | milliseconds, ≥ 1 |
//! | `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` | `cumulative` | `cumulative`, `delta`, `lowmemory` |
//! | `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION` | `explicit_bucket_histogram` | only that (observe's alert rules query explicit buckets) |
//! | `OTEL_PROPAGATORS` | `tracecontext,baggage` | a list of `tracecontext`, `baggage`; or `none` |
//! | `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` (`OTEL_SPAN_…`, `OTEL_LOGRECORD_…` win) | observe's 8 KiB value cap | bytes, ≥ 1 |
//! | `OTEL_ATTRIBUTE_COUNT_LIMIT` (`OTEL_SPAN_…`, `OTEL_LOGRECORD_…` win) | 128 | a count |
//! | `OTEL_LOG_LEVEL` | `info` | `debug`, `info`, `warn`, `error`, `none` |

use crate::error::InitError;
use crate::export::BatchConfig;
use opentelemetry_sdk::metrics::Temporality;
use std::time::Duration;

type Var<'a> = &'a dyn Fn(&str) -> Option<String>;

const MILLIS: &str = "a whole number of milliseconds, at least 1";
const COUNT: &str = "a whole number, at least 1";

fn invalid(variable: &str, value: &str, accepted: impl Into<String>) -> InitError {
    InitError::InvalidVariable {
        variable: variable.to_owned(),
        value: value.to_owned(),
        accepted: accepted.into(),
    }
}

/// `name` as a whole number of at least `min`, if set.
pub(crate) fn number(var: Var<'_>, name: &str, min: u64) -> Result<Option<u64>, InitError> {
    let Some(v) = var(name) else {
        return Ok(None);
    };
    match v.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(Some(n)),
        _ => Err(invalid(
            name,
            &v,
            if min == 0 { "a whole number" } else { COUNT },
        )),
    }
}

/// `name` as a positive number of milliseconds, if set.
pub(crate) fn millis(var: Var<'_>, name: &str) -> Result<Option<Duration>, InitError> {
    let Some(v) = var(name) else {
        return Ok(None);
    };
    match v.trim().parse::<u64>() {
        Ok(ms) if ms >= 1 => Ok(Some(Duration::from_millis(ms))),
        _ => Err(invalid(name, &v, MILLIS)),
    }
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// `base` with `{prefix}_SCHEDULE_DELAY`, `_EXPORT_TIMEOUT`,
/// `_MAX_QUEUE_SIZE` and `_MAX_EXPORT_BATCH_SIZE` (`OTEL_BSP`, `OTEL_BLRP`).
pub(crate) fn batch(
    base: BatchConfig,
    prefix: &str,
    var: Var<'_>,
) -> Result<BatchConfig, InitError> {
    let mut c = base;
    if let Some(d) = millis(var, &format!("{prefix}_SCHEDULE_DELAY"))? {
        c = c.scheduled_delay(d);
    }
    if let Some(d) = millis(var, &format!("{prefix}_EXPORT_TIMEOUT"))? {
        c = c.export_timeout(d);
    }
    if let Some(n) = number(var, &format!("{prefix}_MAX_QUEUE_SIZE"), 1)? {
        c = c.max_queue_size(count(n));
    }
    let name = format!("{prefix}_MAX_EXPORT_BATCH_SIZE");
    if let Some(v) = var(&name) {
        let queue = c.max_queue_size;
        match v.trim().parse::<u64>() {
            Ok(n) if n >= 1 && count(n) <= queue => c = c.max_export_batch_size(count(n)),
            _ => {
                return Err(invalid(
                    &name,
                    &v,
                    format!(
                    "a whole number from 1 to the queue size ({queue}, {prefix}_MAX_QUEUE_SIZE)"
                ),
                ))
            }
        }
    }
    Ok(c)
}

/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`.
pub(crate) fn temporality(var: Var<'_>) -> Result<Temporality, InitError> {
    const NAME: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
    let Some(v) = var(NAME) else {
        return Ok(Temporality::Cumulative);
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "cumulative" => Ok(Temporality::Cumulative),
        "delta" => Ok(Temporality::Delta),
        "lowmemory" => Ok(Temporality::LowMemory),
        _ => Err(invalid(NAME, &v, "cumulative, delta or lowmemory")),
    }
}

/// `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`: only the
/// default is accepted. observe's histograms have explicit buckets, the
/// boundaries its generated alert rules and dashboards query
/// (`histogram_quantile` over `_bucket` series).
pub(crate) fn histogram_aggregation(var: Var<'_>) -> Result<(), InitError> {
    const NAME: &str = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION";
    match var(NAME) {
        Some(v) if !v.trim().eq_ignore_ascii_case("explicit_bucket_histogram") => Err(invalid(
            NAME,
            &v,
            "explicit_bucket_histogram (observe's alert rules and dashboards query its explicit \
             buckets; base2_exponential_bucket_histogram is not supported)",
        )),
        _ => Ok(()),
    }
}

/// Which W3C headers observe reads and writes (`OTEL_PROPAGATORS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Propagators {
    pub(crate) trace_context: bool,
    pub(crate) baggage: bool,
}

impl Default for Propagators {
    fn default() -> Self {
        Propagators {
            trace_context: true,
            baggage: true,
        }
    }
}

/// `OTEL_PROPAGATORS`, if set.
pub(crate) fn propagators(var: Var<'_>) -> Result<Option<Propagators>, InitError> {
    const NAME: &str = "OTEL_PROPAGATORS";
    const ACCEPTED: &str = "a comma-separated list of tracecontext and baggage, or none \
                            (b3, jaeger, xray and ottrace are not supported)";
    let Some(v) = var(NAME) else {
        return Ok(None);
    };
    let mut p = Propagators {
        trace_context: false,
        baggage: false,
    };
    let mut none = false;
    for item in v.split(',').map(str::trim) {
        match item.to_ascii_lowercase().as_str() {
            "tracecontext" => p.trace_context = true,
            "baggage" => p.baggage = true,
            "none" => none = true,
            _ => return Err(invalid(NAME, &v, ACCEPTED)),
        }
    }
    if none && (p.trace_context || p.baggage) {
        return Err(invalid(NAME, &v, ACCEPTED));
    }
    Ok(Some(p))
}

/// Attribute limits of spans or log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Longest attribute value in bytes (cut at a character boundary).
    pub(crate) value_len: Option<usize>,
    /// Most attributes; more are dropped and counted.
    pub(crate) count: usize,
}

/// The specification's default attribute count limit.
pub(crate) const DEFAULT_ATTRIBUTE_COUNT_LIMIT: usize = 128;

/// `OTEL_{kind}_ATTRIBUTE_VALUE_LENGTH_LIMIT` / `_COUNT_LIMIT` (`kind`:
/// `SPAN` or `LOGRECORD`), else the general `OTEL_ATTRIBUTE_*` ones.
pub(crate) fn limits(var: Var<'_>, kind: &str) -> Result<Limits, InitError> {
    let value_len = match number(var, &format!("OTEL_{kind}_ATTRIBUTE_VALUE_LENGTH_LIMIT"), 1)? {
        Some(n) => Some(n),
        None => number(var, "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", 1)?,
    };
    let count_limit = match number(var, &format!("OTEL_{kind}_ATTRIBUTE_COUNT_LIMIT"), 0)? {
        Some(n) => Some(n),
        None => number(var, "OTEL_ATTRIBUTE_COUNT_LIMIT", 0)?,
    };
    Ok(Limits {
        value_len: value_len.map(count),
        count: count_limit.map_or(DEFAULT_ATTRIBUTE_COUNT_LIMIT, count),
    })
}

/// What observe says about itself (`OTEL_LOG_LEVEL`): its `telemetry_dropped`
/// and init warnings are written at `warn`, so `error` and `none` silence them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SelfLevel {
    None,
    Error,
    Warn,
    Info,
    Debug,
}

/// `OTEL_LOG_LEVEL`, if set (unset: `info`).
pub(crate) fn self_level(var: Var<'_>) -> Result<Option<SelfLevel>, InitError> {
    const NAME: &str = "OTEL_LOG_LEVEL";
    let Some(v) = var(NAME) else {
        return Ok(None);
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "none" => Ok(Some(SelfLevel::None)),
        "error" => Ok(Some(SelfLevel::Error)),
        "warn" | "warning" => Ok(Some(SelfLevel::Warn)),
        "info" => Ok(Some(SelfLevel::Info)),
        "debug" => Ok(Some(SelfLevel::Debug)),
        _ => Err(invalid(NAME, &v, "debug, info, warn, error or none")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::env::test_env as env;

    fn error(e: InitError) -> String {
        e.to_string()
    }

    #[test]
    fn batch_variables_are_read_and_bad_ones_refused() {
        let c = batch(
            BatchConfig::default(),
            "OTEL_BSP",
            &env(&[
                ("OTEL_BSP_SCHEDULE_DELAY", "200"),
                ("OTEL_BSP_EXPORT_TIMEOUT", " 4000 "),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "16384"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1024"),
            ]),
        )
        .expect("valid");
        assert_eq!(
            c,
            BatchConfig::default()
                .scheduled_delay(Duration::from_millis(200))
                .export_timeout(Duration::from_secs(4))
                .max_queue_size(16384)
                .max_export_batch_size(1024)
        );
        for (name, value, accepted) in [
            ("OTEL_BLRP_SCHEDULE_DELAY", "1s", MILLIS),
            ("OTEL_BLRP_EXPORT_TIMEOUT", "0", MILLIS),
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "-1", COUNT),
            (
                "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
                "4096",
                "a whole number from 1 to the queue size (2048, OTEL_BLRP_MAX_QUEUE_SIZE)",
            ),
        ] {
            let e =
                batch(BatchConfig::logs(), "OTEL_BLRP", &env(&[(name, value)])).expect_err(name);
            assert_eq!(
                error(e),
                format!("{name} = {value:?} is not valid: use {accepted}")
            );
        }
    }

    #[test]
    fn metric_variables() {
        let v = env(&[("OTEL_METRIC_EXPORT_INTERVAL", "15000")]);
        assert_eq!(
            millis(&v, "OTEL_METRIC_EXPORT_INTERVAL").expect("ok"),
            Some(Duration::from_secs(15))
        );
        assert_eq!(millis(&v, "OTEL_METRIC_EXPORT_TIMEOUT").expect("ok"), None);
        let e = millis(
            &env(&[("OTEL_METRIC_EXPORT_TIMEOUT", "30s")]),
            "OTEL_METRIC_EXPORT_TIMEOUT",
        )
        .expect_err("bad");
        assert_eq!(
            error(e),
            "OTEL_METRIC_EXPORT_TIMEOUT = \"30s\" is not valid: use a whole number of milliseconds, at least 1"
        );
        const T: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
        assert_eq!(temporality(&env(&[])).expect("ok"), Temporality::Cumulative);
        assert_eq!(
            temporality(&env(&[(T, "Delta")])).expect("ok"),
            Temporality::Delta
        );
        assert_eq!(
            temporality(&env(&[(T, "lowmemory")])).expect("ok"),
            Temporality::LowMemory
        );
        assert_eq!(
            error(temporality(&env(&[(T, "deltas")])).expect_err("bad")),
            format!("{T} = \"deltas\" is not valid: use cumulative, delta or lowmemory")
        );
    }

    #[test]
    fn propagators_are_tracecontext_and_baggage_or_none() {
        const P: &str = "OTEL_PROPAGATORS";
        assert_eq!(propagators(&env(&[])).expect("ok"), None);
        assert_eq!(
            propagators(&env(&[(P, "tracecontext, baggage")])).expect("ok"),
            Some(Propagators::default())
        );
        assert_eq!(
            propagators(&env(&[(P, "tracecontext")])).expect("ok"),
            Some(Propagators {
                trace_context: true,
                baggage: false
            })
        );
        assert_eq!(
            propagators(&env(&[(P, "none")])).expect("ok"),
            Some(Propagators {
                trace_context: false,
                baggage: false
            })
        );
        for bad in ["b3", "tracecontext,jaeger", "none,baggage", "trace-context"] {
            assert_eq!(
                error(propagators(&env(&[(P, bad)])).expect_err(bad)),
                format!(
                    "{P} = {bad:?} is not valid: use a comma-separated list of tracecontext and \
                     baggage, or none (b3, jaeger, xray and ottrace are not supported)"
                )
            );
        }
    }

    #[test]
    fn attribute_limits_specific_then_general() {
        assert_eq!(
            limits(&env(&[]), "SPAN").expect("ok"),
            Limits {
                value_len: None,
                count: 128
            }
        );
        let v = env(&[
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3"),
        ]);
        assert_eq!(
            limits(&v, "SPAN").expect("ok"),
            Limits {
                value_len: Some(64),
                count: 3
            }
        );
        assert_eq!(
            limits(&v, "LOGRECORD").expect("ok"),
            Limits {
                value_len: Some(64),
                count: 10
            }
        );
        assert_eq!(
            error(limits(&env(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "0")]), "SPAN").expect_err("bad")),
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT = \"0\" is not valid: use a whole number, at least 1"
        );
        assert_eq!(
            error(
                limits(
                    &env(&[("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "many")]),
                    "LOGRECORD"
                )
                .expect_err("bad")
            ),
            "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT = \"many\" is not valid: use a whole number"
        );
    }

    #[test]
    fn histograms_keep_explicit_buckets() {
        const H: &str = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION";
        assert!(histogram_aggregation(&env(&[])).is_ok());
        assert!(histogram_aggregation(&env(&[(H, "explicit_bucket_histogram")])).is_ok());
        assert_eq!(
            error(histogram_aggregation(&env(&[(H, "base2_exponential_bucket_histogram")])).expect_err("refused")),
            format!(
                "{H} = \"base2_exponential_bucket_histogram\" is not valid: use explicit_bucket_histogram \
                 (observe's alert rules and dashboards query its explicit buckets; \
                 base2_exponential_bucket_histogram is not supported)"
            )
        );
    }

    #[test]
    fn log_level_of_observe_itself() {
        assert_eq!(self_level(&env(&[])).expect("ok"), None);
        assert_eq!(
            self_level(&env(&[("OTEL_LOG_LEVEL", "ERROR")])).expect("ok"),
            Some(SelfLevel::Error)
        );
        assert_eq!(
            error(self_level(&env(&[("OTEL_LOG_LEVEL", "loud")])).expect_err("bad")),
            "OTEL_LOG_LEVEL = \"loud\" is not valid: use debug, info, warn, error or none"
        );
    }
}
