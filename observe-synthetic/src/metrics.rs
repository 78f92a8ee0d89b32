//! The synthetic check instruments.
//!
//! | OpenTelemetry name | Prometheus name | unit | attributes |
//! |---|---|---|---|
//! | `synthetic.check.duration` | `synthetic_check_duration_seconds` | s | `flow`, `step`, `region` |
//! | `synthetic.checks` | `synthetic_checks_total` | `{check}` | `flow`, `step`, `region`, `outcome` |
//! | `synthetic.check.success` | `synthetic_check_success` | (none) | `flow`, `region` |

use super::report::{StepOutcome, OUTSIDE_STEPS};
use observe_core::signals::names::{instrument, Instrument};
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};
use opentelemetry::KeyValue;

/// Instrument names (OpenTelemetry), rows of observe's one table of names.
pub mod names {
    /// Steps run, by outcome.
    pub use observe_core::signals::names::SYNTHETIC_CHECKS as CHECKS;
    /// Duration of each step, in seconds.
    pub use observe_core::signals::names::SYNTHETIC_CHECK_DURATION as CHECK_DURATION;
    /// 1 if the flow's last run succeeded, 0 if it failed (like the blackbox
    /// exporter's `probe_success`).
    pub use observe_core::signals::names::SYNTHETIC_CHECK_SUCCESS as CHECK_SUCCESS;
}

/// The rows of observe's table of instruments these are made from (checked
/// when compiling).
const fn row(name: &str) -> &'static Instrument {
    match instrument(name) {
        Some(r) => r,
        None => panic!("a synthetic instrument missing from observe_core::signals::names::ALL"),
    }
}
const DURATION: &Instrument = row(names::CHECK_DURATION);
const CHECKS_ROW: &Instrument = row(names::CHECKS);
const SUCCESS: &Instrument = row(names::CHECK_SUCCESS);

/// Bucket boundaries of `synthetic.check.duration` (seconds): the HTTP
/// buckets, up to the default step timeout and beyond.
pub const STEP_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
];

/// The three synthetic instruments, created from one meter.
///
/// ```
/// use observe_core::opentelemetry::metrics::MeterProvider as _;
/// use observe_core::opentelemetry_sdk::metrics::SdkMeterProvider;
///
/// let provider = SdkMeterProvider::builder().build();
/// let instruments = observe_synthetic::SyntheticInstruments::new(&provider.meter("observe"));
/// # drop(instruments);
/// ```
#[derive(Debug)]
pub struct SyntheticInstruments {
    duration: Histogram<f64>,
    checks: Counter<u64>,
    success: Gauge<u64>,
}

impl SyntheticInstruments {
    /// Creates the instruments on `meter`.
    pub fn new(meter: &Meter) -> Self {
        SyntheticInstruments {
            duration: meter
                .f64_histogram(names::CHECK_DURATION)
                .with_unit(DURATION.unit)
                .with_description(DURATION.description)
                .with_boundaries(STEP_DURATION_BUCKETS.to_vec())
                .build(),
            checks: meter
                .u64_counter(names::CHECKS)
                .with_unit(CHECKS_ROW.unit)
                .with_description(CHECKS_ROW.description)
                .build(),
            success: meter
                .u64_gauge(names::CHECK_SUCCESS)
                .with_description(SUCCESS.description)
                .build(),
        }
    }

    pub(crate) fn step(
        &self,
        flow: &str,
        step: &str,
        region: &str,
        outcome: StepOutcome,
        seconds: f64,
    ) {
        let flow = KeyValue::new("flow", flow.to_owned());
        let step = KeyValue::new("step", step.to_owned());
        let region = KeyValue::new("region", region.to_owned());
        self.duration
            .record(seconds, &[flow.clone(), step.clone(), region.clone()]);
        self.checks.add(
            1,
            &[
                flow,
                step,
                region,
                KeyValue::new("outcome", outcome.as_str()),
            ],
        );
    }

    /// A failure outside any step: counted under `step` = [`OUTSIDE_STEPS`].
    pub(crate) fn outside_steps(&self, flow: &str, region: &str, outcome: StepOutcome) {
        self.checks.add(
            1,
            &[
                KeyValue::new("flow", flow.to_owned()),
                KeyValue::new("step", OUTSIDE_STEPS),
                KeyValue::new("region", region.to_owned()),
                KeyValue::new("outcome", outcome.as_str()),
            ],
        );
    }

    pub(crate) fn run(&self, flow: &str, region: &str, success: bool) {
        self.success.record(
            u64::from(success),
            &[
                KeyValue::new("flow", flow.to_owned()),
                KeyValue::new("region", region.to_owned()),
            ],
        );
    }
}
