//! Server-request series bound once per thread: a request whose attribute
//! set was seen before records its duration with a bound histogram (a
//! bucket search and the data point's own lock) and finds its exemplar
//! slot without hashing its attributes.
//!
//! A series is found by identity, not by content: the method, the route and
//! the error type are `&'static str`s (interned routes and the fixed error
//! types), so their addresses and lengths name them. A request with an
//! owned route or error type takes the unbound path, as before.
//! Each thread keeps [`SLOTS`] series, direct-mapped; a collision replaces
//! the older one (dropping its binding). Entries are keyed by the
//! [`Signals`](super::Signals) instance's id, which is never reused, so a
//! series of a telemetry instance that was dropped is never found again.

use crate::exemplars::AttributesKey;
use opentelemetry::metrics::BoundHistogram;
use std::borrow::Cow;
use std::cell::RefCell;

/// Series kept per thread.
const SLOTS: usize = 64;

/// A `&'static str` by address and length.
type StrId = (usize, usize);

fn str_id(s: &'static str) -> StrId {
    (s.as_ptr() as usize, s.len())
}

/// What names one series of `http.server.request.duration`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct ServerKey {
    signals: u64,
    method: StrId,
    route: StrId,
    /// `u16::MAX`: no status (the service failed before responding).
    status: u16,
    /// `(0, 0)`: no error type.
    error: StrId,
    synthetic: bool,
}

impl ServerKey {
    /// The key of a request, when every string in it is `'static`.
    // The `Cow`s are what says whether a string is `'static`.
    #[allow(clippy::ptr_arg)]
    #[inline]
    pub(super) fn new(
        signals: u64,
        method: &'static str,
        route: &Cow<'static, str>,
        status: Option<u16>,
        error: &Option<Cow<'static, str>>,
        synthetic: bool,
    ) -> Option<Self> {
        let Cow::Borrowed(route) = route else {
            return None;
        };
        let error = match error {
            None => (0, 0),
            Some(Cow::Borrowed(e)) => str_id(e),
            Some(Cow::Owned(_)) => return None,
        };
        Some(ServerKey {
            signals,
            method: str_id(method),
            route: str_id(route),
            status: status.unwrap_or(u16::MAX),
            error,
            synthetic,
        })
    }

    #[inline]
    fn slot(&self) -> usize {
        let words = [
            self.signals,
            self.method.0 as u64,
            self.route.0 as u64 ^ (self.route.1 as u64) << 48,
            u64::from(self.status) | u64::from(self.synthetic) << 16,
            self.error.0 as u64,
        ];
        let h = words.iter().fold(0u64, |h, w| {
            (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(23)
        });
        (h >> 58) as usize % SLOTS
    }
}

/// One bound series: its histogram data point and its exemplar key.
pub(super) struct Series {
    pub(super) duration: BoundHistogram<f64>,
    pub(super) exemplar: AttributesKey,
}

type Slot = Option<(ServerKey, Series)>;

thread_local! {
    static SERVER: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// Runs `record` with the series of `key`, binding it with `bind` when this
/// thread has not got it. Returns `false`, having run nothing, when the
/// thread's series are in use further up the stack or the thread is exiting:
/// the caller then takes the unbound path.
#[inline]
pub(super) fn with_server(
    key: ServerKey,
    bind: impl FnOnce() -> Series,
    record: impl FnOnce(&Series),
) -> bool {
    SERVER
        .try_with(|slots| {
            let Ok(mut slots) = slots.try_borrow_mut() else {
                return false;
            };
            if slots.is_empty() {
                slots.resize_with(SLOTS, || None);
            }
            let slot = &mut slots[key.slot()];
            let series = match slot {
                Some((k, s)) if *k == key => s,
                _ => &mut slot.insert((key, bind())).1,
            };
            record(series);
            true
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use crate::metrics::{MetricPoint, MetricValue};
    use crate::signals::current;
    use crate::testing::capture;
    use std::borrow::Cow;

    /// (attributes as `k=v` pairs, count) of each `http.server.request.duration` point.
    fn points(metrics: Vec<&MetricPoint>) -> Vec<(Vec<String>, u64)> {
        let mut v: Vec<_> = metrics
            .into_iter()
            .map(|p| {
                let attrs = p
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                match p.value {
                    MetricValue::Histogram { count, .. } => (attrs, count),
                    ref other => panic!("not a histogram: {other:?}"),
                }
            })
            .collect();
        v.sort();
        v
    }

    fn request(route: Cow<'static, str>, status: Option<u16>, error: Option<&'static str>) {
        let s = current().expect("signals");
        s.server_request(
            "GET",
            route,
            status,
            error.map(Cow::Borrowed),
            false,
            0.25,
            None,
        );
    }

    #[test]
    fn bound_and_unbound_series_record_the_same_points() {
        let (_, cap) = capture(|| {
            for _ in 0..3 {
                request(Cow::Borrowed("/orders/{id}"), Some(200), None);
            }
            request(Cow::Borrowed("/orders/{id}"), Some(500), Some("500"));
            request(Cow::Borrowed("/orders/{id}"), None, Some("timeout"));
            // An owned route (past the interner's cap) is not bound.
            request(Cow::Owned("/orders/{id}".to_owned()), Some(200), None);
        });
        let route = "http.route=/orders/{id}";
        let method = "http.request.method=GET";
        assert_eq!(
            points(cap.metric("http.server.request.duration")),
            vec![
                (
                    vec![
                        "error.type=500".to_owned(),
                        method.to_owned(),
                        "http.response.status_code=500".to_owned(),
                        route.to_owned()
                    ],
                    1
                ),
                (
                    vec![
                        "error.type=timeout".to_owned(),
                        method.to_owned(),
                        route.to_owned()
                    ],
                    1
                ),
                (
                    vec![
                        method.to_owned(),
                        "http.response.status_code=200".to_owned(),
                        route.to_owned()
                    ],
                    4
                ),
            ]
        );
    }

    #[test]
    fn a_thread_keeps_each_telemetry_instances_series_apart() {
        let record = || request(Cow::Borrowed("/pay"), Some(200), None);
        let (_, first) = capture(|| {
            record();
            record();
        });
        // Same thread, same attribute set, another instance: its own series.
        let (_, second) = capture(record);
        let counts = |c: &crate::testing::Capture| {
            points(c.metric("http.server.request.duration"))
                .into_iter()
                .map(|(_, n)| n)
                .collect::<Vec<_>>()
        };
        assert_eq!((counts(&first), counts(&second)), (vec![2], vec![1]));
    }
}
