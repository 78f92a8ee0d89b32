//! When a failed OTLP export is tried again, as the OTLP specification
//! says: which answers are retryable, how long to wait (exponential backoff
//! with jitter, or what the receiver asked for), and when to stop (the
//! export timeout).
//!
//! | answer | verdict |
//! |---|---|
//! | gRPC `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`, `UNAVAILABLE`, `DATA_LOSS` | retry (after `RetryInfo`'s delay, if given) |
//! | gRPC `RESOURCE_EXHAUSTED` with `RetryInfo` | retry after its delay |
//! | gRPC `RESOURCE_EXHAUSTED` without it, any other code | rejected: counted, not retried |
//! | HTTP 429, 502, 503, 504 | retry (after `Retry-After`, if given) |
//! | any other HTTP status outside 2xx | rejected: counted, not retried |
//! | no answer (refused, reset, timed out) | retry |
//! | the TLS handshake failed (untrusted, expired, wrong host) | failed: not retried (it cannot get better by waiting) |

use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

/// The first backoff delay.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest backoff delay (it doubles up to this).
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest wait a receiver may ask for (`Retry-After`, `RetryInfo`);
/// the export timeout bounds every wait anyway.
pub(crate) const MAX_SERVER_DELAY: Duration = Duration::from_secs(30);

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Try again; after the receiver's delay, if it gave one.
    Retry(Option<Duration>),
    /// The receiver refused the data for good (`rejected`).
    Reject,
    /// Cannot be delivered by trying again (`export_failed`).
    Fail,
}

/// The verdict on a gRPC status (`retry_info`: the delay of its
/// `google.rpc.RetryInfo` detail, if it has one; `Some(None)`: one without
/// a delay).
pub(crate) fn grpc(code: tonic::Code, retry_info: Option<Option<Duration>>) -> Verdict {
    use tonic::Code;
    let delay = retry_info.flatten().map(|d| d.min(MAX_SERVER_DELAY));
    match code {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => Verdict::Retry(delay),
        Code::ResourceExhausted if retry_info.is_some() => Verdict::Retry(delay),
        _ => Verdict::Reject,
    }
}

/// The verdict on an HTTP answer outside 2xx, with its `Retry-After`.
pub(crate) fn http(status: u16, retry_after: Option<&str>, now: SystemTime) -> Verdict {
    match status {
        429 | 502 | 503 | 504 => {
            Verdict::Retry(retry_after.and_then(|v| parse_retry_after(v, now)))
        }
        _ => Verdict::Reject,
    }
}

/// The verdict on a transport error (no answer): retry, unless the TLS
/// handshake failed.
pub(crate) fn transport(error: &(dyn StdError + 'static)) -> Verdict {
    if is_tls_failure(error) {
        Verdict::Fail
    } else {
        Verdict::Retry(None)
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3);
/// `None` when it is neither.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    let delay = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(v)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(delay.min(MAX_SERVER_DELAY))
}

/// Whether `error`, or an error it was caused by, is a TLS failure
/// (rustls's error, also inside an `io::Error`).
fn is_tls_failure(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if is_tls_failure(inner) {
                return true;
            }
        }
        // HTTP/2 keeps only the text of an I/O error (h2's `proto::Error`),
        // so a TLS alert read on an h2 connection is known by rustls's words.
        let text = e.to_string();
        if TLS_WORDS.iter().any(|w| text.contains(w)) {
            return true;
        }
        next = e.source();
    }
    false
}

/// How rustls's `Error` says a handshake failed (its `Display`).
const TLS_WORDS: [&str; 2] = ["received fatal alert: ", "invalid peer certificate: "];

/// Exponential backoff with jitter: the n-th wait is drawn uniformly from
/// `[d/2, d]` with `d = min(100 ms × 2ⁿ, 5 s)`, so exporters that failed
/// together do not retry together.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    rng: crate::ids::Rng,
}

impl Backoff {
    pub(crate) fn new(seed: u64) -> Self {
        Backoff {
            next: INITIAL_BACKOFF,
            rng: crate::ids::Rng::from_seed(seed),
        }
    }

    /// The wait before the next attempt: the receiver's delay if it gave
    /// one, else the next backoff step.
    pub(crate) fn wait(&mut self, requested: Option<Duration>) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        if let Some(r) = requested {
            return r;
        }
        let half = d / 2;
        let span = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(self.rng.next_u64() % (span + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn grpc_codes_follow_the_specification() {
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert_eq!(grpc(code, None), Verdict::Retry(None), "{code:?}");
        }
        for code in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
            Code::Unimplemented,
            Code::Internal,
            Code::Unknown,
            Code::FailedPrecondition,
            Code::AlreadyExists,
        ] {
            assert_eq!(grpc(code, None), Verdict::Reject, "{code:?}");
        }
        assert_eq!(grpc(Code::ResourceExhausted, None), Verdict::Reject);
        assert_eq!(
            grpc(Code::ResourceExhausted, Some(Some(Duration::from_secs(2)))),
            Verdict::Retry(Some(Duration::from_secs(2)))
        );
        assert_eq!(
            grpc(Code::ResourceExhausted, Some(None)),
            Verdict::Retry(None)
        );
        assert_eq!(
            grpc(Code::Unavailable, Some(Some(Duration::from_secs(600)))),
            Verdict::Retry(Some(MAX_SERVER_DELAY))
        );
    }

    #[test]
    fn http_statuses_follow_the_specification() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for s in [429, 502, 503, 504] {
            assert_eq!(http(s, None, now), Verdict::Retry(None), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 413, 415, 500, 501] {
            assert_eq!(http(s, None, now), Verdict::Reject, "{s}");
        }
        assert_eq!(
            http(503, Some("3"), now),
            Verdict::Retry(Some(Duration::from_secs(3)))
        );
        assert_eq!(http(400, Some("3"), now), Verdict::Reject);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            parse_retry_after("Tue, 14 Nov 2023 22:13:25 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("99999", now), Some(MAX_SERVER_DELAY));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn tls_failures_are_not_retried_even_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert_eq!(transport(&tls), Verdict::Fail);
        let io = std::io::Error::other(tls);
        assert_eq!(transport(&io), Verdict::Fail);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(transport(&refused), Verdict::Retry(None));
        // What an HTTP/2 connection keeps of a TLS alert: its text.
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        let text = std::io::Error::new(std::io::ErrorKind::InvalidData, alert.to_string());
        assert_eq!(transport(&text), Verdict::Fail);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap() {
        let mut b = Backoff::new(7);
        let mut cap = INITIAL_BACKOFF;
        for _ in 0..12 {
            let w = b.wait(None);
            assert!(
                w >= cap / 2 && w <= cap,
                "{w:?} not in [{:?}, {cap:?}]",
                cap / 2
            );
            cap = (cap * 2).min(MAX_BACKOFF);
        }
        assert_eq!(cap, MAX_BACKOFF);
        // A receiver's delay is taken as given, and still advances the steps.
        let mut b = Backoff::new(7);
        assert_eq!(
            b.wait(Some(Duration::from_millis(1234))),
            Duration::from_millis(1234)
        );
        let w = b.wait(None);
        assert!(w >= INITIAL_BACKOFF && w <= INITIAL_BACKOFF * 2, "{w:?}");
        // Two exporters seeded differently do not wait alike.
        let (mut x, mut y) = (Backoff::new(1), Backoff::new(2));
        let xs: Vec<Duration> = (0..6).map(|_| x.wait(None)).collect();
        let ys: Vec<Duration> = (0..6).map(|_| y.wait(None)).collect();
        assert_ne!(xs, ys);
    }
}
