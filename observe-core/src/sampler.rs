//! Head sampling at span start: the samplers of `OTEL_TRACES_SAMPLER`.

use crate::error::InitError;

/// A head sampler, decided when a trace's first local span starts.
///
/// The names follow `OTEL_TRACES_SAMPLER`; the ratio decision is the
/// OpenTelemetry SDK's, from the trace id's low 63 bits, so services using the
/// SDK agree.
#[derive(Clone, Debug, PartialEq)]
pub enum HeadSampler {
    /// Record and export every span.
    AlwaysOn,
    /// Record nothing (ids are still assigned, so logs keep their trace ids).
    AlwaysOff,
    /// Keep this share (0..=1) of traces, decided from the trace id.
    TraceIdRatio(f64),
    /// Follow the remote or local parent's sampled flag; use the inner sampler for roots.
    ParentBased(Box<HeadSampler>),
}

impl Default for HeadSampler {
    fn default() -> Self {
        HeadSampler::ParentBased(Box::new(HeadSampler::AlwaysOn))
    }
}

impl HeadSampler {
    /// Parses `OTEL_TRACES_SAMPLER` and its `OTEL_TRACES_SAMPLER_ARG`.
    pub fn from_env_values(name: &str, arg: Option<&str>) -> Result<Self, InitError> {
        let ratio = || -> Result<f64, InitError> {
            match arg.map(str::trim) {
                None | Some("") => Ok(1.0),
                Some(a) => match a.parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                    _ => Err(InitError::InvalidSamplerArg {
                        value: a.to_owned(),
                    }),
                },
            }
        };
        Ok(match name.trim() {
            "always_on" => HeadSampler::AlwaysOn,
            "always_off" => HeadSampler::AlwaysOff,
            "traceidratio" => HeadSampler::TraceIdRatio(ratio()?),
            "parentbased_always_on" => HeadSampler::ParentBased(Box::new(HeadSampler::AlwaysOn)),
            "parentbased_always_off" => HeadSampler::ParentBased(Box::new(HeadSampler::AlwaysOff)),
            "parentbased_traceidratio" => {
                HeadSampler::ParentBased(Box::new(HeadSampler::TraceIdRatio(ratio()?)))
            }
            other => {
                return Err(InitError::UnknownSampler {
                    name: other.to_owned(),
                })
            }
        })
    }

    /// Decides for a span: `parent_sampled` is `Some` when the span has a parent.
    #[inline]
    pub(crate) fn should_sample(&self, parent_sampled: Option<bool>, trace_id: u128) -> bool {
        match self {
            HeadSampler::AlwaysOn => true,
            HeadSampler::AlwaysOff => false,
            HeadSampler::TraceIdRatio(r) => ratio_decision(*r, trace_id),
            HeadSampler::ParentBased(root) => match parent_sampled {
                Some(s) => s,
                None => root.should_sample(None, trace_id),
            },
        }
    }
}

/// The OpenTelemetry SDK's `TraceIdRatioBased` decision.
#[inline]
pub(crate) fn ratio_decision(ratio: f64, trace_id: u128) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    ((trace_id as u64) >> 1) < bound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_names() {
        assert_eq!(
            HeadSampler::from_env_values("parentbased_traceidratio", Some("0.25")).ok(),
            Some(HeadSampler::ParentBased(Box::new(
                HeadSampler::TraceIdRatio(0.25)
            )))
        );
        assert!(matches!(
            HeadSampler::from_env_values("jaeger_remote", None),
            Err(InitError::UnknownSampler { .. })
        ));
        assert!(matches!(
            HeadSampler::from_env_values("traceidratio", Some("1.5")),
            Err(InitError::InvalidSamplerArg { .. })
        ));
    }

    #[test]
    fn ratio_is_close_to_requested_share() {
        let mut rng = crate::ids::Rng::from_seed(1);
        let kept = (0..100_000)
            .filter(|_| {
                let id = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
                ratio_decision(0.1, id)
            })
            .count();
        assert!((9_000..11_000).contains(&kept), "kept {kept}");
    }
}
