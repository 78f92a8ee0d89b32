//! Cheap clock reads for the request path.
//!
//! Every span reads the clock at least twice and every log line once, so
//! the request path never calls `clock_gettime`: [`Instant`] reads the
//! CPU's time-stamp counter where it is invariant (fastant, the clock fastrace uses) and falls
//! back to the OS clock elsewhere; [`wall_now`] turns a counter reading into
//! wall-clock time through a per-thread anchor refreshed every second, so
//! the counter's drift against an NTP-disciplined clock never accumulates.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) use fastant::Instant;

/// How long a thread keeps one (counter, wall clock) anchor.
const REFRESH: Duration = Duration::from_secs(1);

thread_local! {
    /// The thread's anchor and the counter reading after which it is stale.
    static ANCHOR: Cell<Option<(fastant::Anchor, Instant)>> = const { Cell::new(None) };
}

/// Wall-clock time of a counter reading taken on this thread just now.
#[inline]
pub(crate) fn wall_at(now: Instant) -> SystemTime {
    let anchor = ANCHOR
        .try_with(|a| match a.get() {
            // One integer comparison on the hot path.
            Some((anchor, stale_at)) if now < stale_at => anchor,
            _ => {
                let anchor = fastant::Anchor::new();
                a.set(Some((anchor, now.checked_add(REFRESH).unwrap_or(now))));
                anchor
            }
        })
        // Thread-local already destroyed (a span closed during thread exit).
        .unwrap_or_else(|_| fastant::Anchor::new());
    UNIX_EPOCH + Duration::from_nanos(now.as_unix_nanos(&anchor))
}

/// The wall-clock time now.
#[inline]
pub(crate) fn wall_now() -> SystemTime {
    wall_at(Instant::now())
}

/// Measures a duration with the clock spans use (the time-stamp counter
/// where it is invariant): what the layers time requests and calls with,
/// without a `clock_gettime` per reading.
///
/// ```
/// let watch = observe_core::signals::Stopwatch::start();
/// assert!(watch.elapsed_secs() >= 0.0);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts now.
    #[inline]
    pub fn start() -> Self {
        Stopwatch(Instant::now())
    }

    /// Seconds since [`Stopwatch::start`].
    #[inline]
    pub fn elapsed_secs(&self) -> f64 {
        Instant::now().duration_since(self.0).as_secs_f64()
    }
}

/// Where timestamps come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub, dead_code))]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A fixed instant, for golden tests.
    Fixed(SystemTime),
}

impl Clock {
    #[inline]
    pub(crate) fn now(&self) -> SystemTime {
        match self {
            Clock::System => wall_now(),
            Clock::Fixed(t) => *t,
        }
    }

    /// The time of a clock reading already taken (`None`: read it now).
    #[inline]
    pub(crate) fn at(&self, reading: Option<Instant>) -> SystemTime {
        match (self, reading) {
            (Clock::System, Some(at)) => wall_at(at),
            _ => self.now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_now_tracks_the_system_clock() {
        for _ in 0..1000 {
            let before = SystemTime::now();
            let ours = wall_now();
            let after = SystemTime::now();
            // Within a millisecond of the OS clock read around it.
            let lo = before - Duration::from_millis(1);
            let hi = after + Duration::from_millis(1);
            assert!(lo <= ours && ours <= hi, "{ours:?} not in [{lo:?}, {hi:?}]");
        }
    }

    #[test]
    fn durations_are_monotonic() {
        let a = Instant::now();
        std::thread::sleep(Duration::from_millis(5));
        let d = Instant::now().duration_since(a);
        assert!(
            d >= Duration::from_millis(4) && d < Duration::from_secs(5),
            "{d:?}"
        );
    }
}
