//! Opt-in log sampling: per level and per event, trace-consistent, with a
//! per-request buffer that writes sampled-out lines when the request fails.
//!
//! The decision for a line inside a trace is a function of its trace id, so
//! one request's lines are kept or dropped together; lines outside any trace
//! use a per-thread random number.

use crate::error::InitError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::Level;

/// Sampling rates per level and per event name.
///
/// ```
/// use observe_core::LogSampling;
/// let s: LogSampling = "error=1,warn=0.1,info=0.01,event:health_check_ok=0.0001".parse().unwrap();
/// assert_eq!(s.rate_for_level(tracing::Level::WARN), 0.1);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LogSampling {
    /// ERROR, WARN, INFO, DEBUG, TRACE.
    levels: [f64; 5],
    events: Vec<(String, f64)>,
    /// Most lines buffered per request, and most bytes.
    pub(crate) request_buffer_lines: usize,
    pub(crate) request_buffer_bytes: usize,
}

impl Default for LogSampling {
    /// Keeps everything until rates are set.
    fn default() -> Self {
        LogSampling {
            levels: [1.0; 5],
            events: Vec::new(),
            request_buffer_lines: 256,
            request_buffer_bytes: 64 * 1024,
        }
    }
}

fn level_index(level: Level) -> usize {
    match level {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        _ => 4,
    }
}

impl LogSampling {
    /// Keep everything (then narrow with the setters).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the share (0..=1) of lines kept at `level`.
    pub fn level(mut self, level: Level, rate: f64) -> Self {
        self.levels[level_index(level)] = rate.clamp(0.0, 1.0);
        self
    }

    /// Sets the share (0..=1) of lines kept for the event `name` (overrides its level).
    pub fn event(mut self, name: impl Into<String>, rate: f64) -> Self {
        let name = name.into();
        let rate = rate.clamp(0.0, 1.0);
        match self.events.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 = rate,
            None => self.events.push((name, rate)),
        }
        self
    }

    /// How many lines (and bytes) one request may hold back for a failure.
    pub fn request_buffer(mut self, lines: usize, bytes: usize) -> Self {
        self.request_buffer_lines = lines;
        self.request_buffer_bytes = bytes;
        self
    }

    /// The rate for a level.
    pub fn rate_for_level(&self, level: Level) -> f64 {
        self.levels[level_index(level)]
    }

    /// The rate for a line: its event's rate if set, else its level's.
    pub(crate) fn rate(&self, level: Level, event: &[u8]) -> f64 {
        if !self.events.is_empty() {
            for (n, r) in &self.events {
                if n.as_bytes() == event {
                    return *r;
                }
            }
        }
        self.levels[level_index(level)]
    }
}

impl std::str::FromStr for LogSampling {
    type Err = InitError;

    /// `error=1,warn=0.1,info=0.01,debug=0,event:health_check_ok=0.0001`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InitError::InvalidLogSampling {
            value: s.to_owned(),
        };
        let mut out = LogSampling::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            let rate: f64 = v.trim().trim_end_matches('%').parse().map_err(|_| bad())?;
            let rate = if v.trim().ends_with('%') {
                rate / 100.0
            } else {
                rate
            };
            if !(0.0..=1.0).contains(&rate) {
                return Err(bad());
            }
            let k = k.trim();
            if let Some(ev) = k.strip_prefix("event:") {
                out = out.event(ev.trim(), rate);
            } else {
                let level = match k.to_ascii_lowercase().as_str() {
                    "error" => Level::ERROR,
                    "warn" => Level::WARN,
                    "info" => Level::INFO,
                    "debug" => Level::DEBUG,
                    "trace" => Level::TRACE,
                    _ => return Err(bad()),
                };
                out = out.level(level, rate);
            }
        }
        Ok(out)
    }
}

/// Whether a line is written now: always without sampling or in full
/// fidelity; else by its event's (or level's) rate, decided from its trace
/// id (so one request's lines go together) or, outside any trace, at random.
#[inline]
pub(crate) fn keep_line(
    sampling: Option<&LogSampling>,
    state: &SamplingState,
    level: Level,
    event: &[u8],
    trace_id: Option<u128>,
) -> bool {
    let Some(cfg) = sampling else { return true };
    if state.full_fidelity() {
        return true;
    }
    let u = match trace_id {
        Some(t) => uniform_from_trace(t),
        None => crate::ids::random_u64(),
    };
    keep(cfg.rate(level, event), u)
}

/// Holds a sampled-out line in its request's buffer, to be written if the
/// request fails; `false` (and counted as overflow) when the buffer is full.
pub(crate) fn hold(
    held: &mut crate::classify::RequestLines,
    cfg: &LogSampling,
    head: &[u8],
    tail: &[u8],
) -> bool {
    if held.lines < cfg.request_buffer_lines
        && held.bytes.len() + head.len() + tail.len() <= cfg.request_buffer_bytes
    {
        held.bytes.extend_from_slice(head);
        held.bytes.extend_from_slice(tail);
        held.lines += 1;
        true
    } else {
        held.overflow += 1;
        false
    }
}

/// Keep-or-drop from a 64-bit uniform value.
#[inline]
pub(crate) fn keep(rate: f64, uniform: u64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    ((uniform >> 11) as f64) < rate * (1u64 << 53) as f64
}

/// A uniform value from a trace id, independent of the trace sampler's bits.
#[inline]
pub(crate) fn uniform_from_trace(trace_id: u128) -> u64 {
    crate::ids::mix64(
        (trace_id >> 64) as u64 ^ (trace_id as u64).rotate_left(17) ^ 0x5851_f42d_4c95_7f2d,
    )
}

/// Run-time switch and counters of log sampling.
#[derive(Debug, Default)]
pub(crate) struct SamplingState {
    /// Unix micros until which every line is kept (full fidelity).
    full_until_micros: AtomicU64,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl SamplingState {
    pub(crate) fn full_fidelity_for(&self, d: Duration) {
        let until = now_micros().saturating_add(d.as_micros() as u64);
        self.full_until_micros.fetch_max(until, Ordering::Relaxed);
    }

    pub(crate) fn end_full_fidelity(&self) {
        self.full_until_micros.store(0, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn full_fidelity(&self) -> bool {
        let until = self.full_until_micros.load(Ordering::Relaxed);
        until != 0 && now_micros() < until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules_and_rejects_bad_ones() {
        let s: LogSampling = "ERROR=1, warn=10%, info=0.01, event:health_check_ok=0.0001"
            .parse()
            .expect("valid");
        assert_eq!(s.rate_for_level(Level::WARN), 0.1);
        assert_eq!(s.rate(Level::INFO, b"health_check_ok"), 0.0001);
        assert_eq!(s.rate(Level::INFO, b"payment_failed"), 0.01);
        for bad in ["info", "info=2", "loud=1", "warn=x"] {
            assert!(bad.parse::<LogSampling>().is_err(), "{bad}");
        }
    }

    #[test]
    fn keep_matches_rate_statistically() {
        let mut rng = crate::ids::Rng::from_seed(3);
        let n = 200_000;
        for rate in [0.01, 0.1, 0.5] {
            let kept = (0..n)
                .filter(|_| {
                    let id = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
                    keep(rate, uniform_from_trace(id))
                })
                .count() as f64;
            let expected = rate * n as f64;
            // Five standard deviations of a binomial.
            let sd = (n as f64 * rate * (1.0 - rate)).sqrt();
            assert!(
                (kept - expected).abs() < 5.0 * sd,
                "rate {rate}: kept {kept}"
            );
        }
        assert!(keep(1.0, u64::MAX));
        assert!(!keep(0.0, 0));
    }
}
