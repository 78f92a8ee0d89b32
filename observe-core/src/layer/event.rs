//! One event: its JSON line (laid out by [`crate::log::line`], kept or held
//! back by [`crate::log::sampling`]), an event on the innermost recorded
//! span for errors and warnings, and an OpenTelemetry log record when log
//! records are exported ([`crate::export::record`]).

use super::fields::{CallsiteCache, EventFieldSink, Visitor};
use super::local;
use super::span_state::{SpanRecord, SpanState};
use super::{Shared, TelemetryLayer};
use crate::export::record::{self, Record};
use crate::log::line::{self, Head, LineBufs, LineSpan};
use crate::log::sampling;
use opentelemetry::logs::AnyValue;
use opentelemetry::trace::Event;
use opentelemetry::{Key, KeyValue};
use std::cell::RefCell;
use std::time::SystemTime;
use tracing::{Event as TracingEvent, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// Spans of an event's scope that lend fields to its line.
pub(super) const MAX_SCOPE: usize = 8;
/// Most events kept on one span.
const MAX_SPAN_EVENTS: usize = 128;

/// This thread's buffers for one event.
#[derive(Default)]
struct EventBufs {
    line: LineBufs,
    /// The event's fields as log-record attributes (when records are exported).
    otel: Vec<(Key, AnyValue)>,
    /// Compiled call sites (keys, redaction bits, target).
    callsites: CallsiteCache,
    /// A `log` record's target, and it as `,"target":"..."`: every `log`
    /// record comes through one of tracing-log's five call sites, so its
    /// target is read from the record, not from the call site.
    log_target: String,
    log_target_json: Vec<u8>,
}

thread_local! {
    static BUFS: RefCell<EventBufs> = RefCell::new(EventBufs::default());
}

impl EventBufs {
    /// The pass over the event's fields: they go straight into the line's
    /// tail, `message` and `event` are kept for the head. Returns the Bloom
    /// bits of the names written and whether the event was named.
    #[inline]
    fn record(&mut self, event: &TracingEvent<'_>, sh: &Shared) -> (u64, bool) {
        let meta = event.metadata();
        let info = self.callsites.get(meta, &sh.redactor);
        let (bloom, is_log) = (info.bloom, info.is_log);
        let b = &mut self.line;
        if is_log {
            self.log_target.clear();
        }
        let mut sink = EventFieldSink {
            out: &mut b.tail,
            message: &mut b.message,
            event: &mut b.event,
            names: &mut b.names,
            log_target: &mut self.log_target,
            otel: if sh.otel_logs.is_some() {
                Some(&mut self.otel)
            } else {
                None
            },
            redactor: &sh.redactor,
            info,
            cap: sh.value_cap,
        };
        event.record(&mut Visitor(&mut sink));
        let named = !b.event.is_empty();
        if is_log {
            // A `log` record: its event is its target in snake_case, as
            // for any event without an `event` field.
            self.log_target_json.clear();
            line::write_target_json(&mut self.log_target_json, &self.log_target);
            if !named {
                line::write_inferred_event(&mut b.event, &self.log_target);
            }
        } else if !named {
            // A plain tracing event: named by its message when that is a
            // fixed phrase, else by its target.
            match self.callsites.peek(meta) {
                Some(info) => info.write_unnamed_event(&mut b.event, &b.message),
                None => line::write_inferred_event(&mut b.event, meta.target()),
            }
        }
        (bloom, named)
    }
}

impl TelemetryLayer {
    pub(super) fn write_event<S>(&self, event: &TracingEvent<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // The event's spans, innermost first (deeper ones lend no fields):
        // the `#[observed]` calls running in tracing's current span, then
        // tracing's scope.
        let mut spans: [Option<SpanRef<'_, S>>; MAX_SCOPE] = [const { None }; MAX_SCOPE];
        if let Some(scope) = ctx.event_scope(event) {
            for (slot, span) in spans.iter_mut().zip(scope) {
                *slot = Some(span);
            }
        }
        if event.is_contextual() && local::any_entered() {
            let current = spans[0].as_ref().map(|s| s.id().into_u64());
            local::with_scope(current, |locals| self.write_line(event, &spans, locals));
        } else {
            self.write_line(event, &spans, &mut []);
        }
    }

    fn write_line<S>(
        &self,
        event: &TracingEvent<'_>,
        spans: &[Option<SpanRef<'_, S>>; MAX_SCOPE],
        locals: &mut [local::Frame],
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let sh = &*self.shared;
        let meta = event.metadata();
        let level = *meta.level();
        let mut write = |bufs: &mut EventBufs| {
            bufs.line.clear();
            bufs.otel.clear();
            let (bloom, named) = bufs.record(event, sh);
            let now = sh.clock.now();
            let EventBufs {
                line: b,
                otel,
                callsites,
                log_target,
                log_target_json,
            } = bufs;
            let target_owned;
            let (target, is_log): (&[u8], bool) = match callsites.peek(meta) {
                Some(info) if info.is_log => (log_target_json, true),
                Some(info) => (&info.target_json, false),
                None => {
                    target_owned = line::target_json(meta.target());
                    (&target_owned, false)
                }
            };
            let head = Head {
                now,
                level: &sh.after_timestamp[line::level_index(level)],
                target,
                named,
            };
            let found = line::layout(b, &head, bloom, |walk| {
                for fr in locals.iter().rev() {
                    walk.span(&*fr.state);
                }
                for span in spans.iter().flatten() {
                    if let Some(st) = span.extensions().get::<SpanState>() {
                        walk.span(st);
                    }
                }
            });
            self.deliver(b, level, &found);
            let event_name = || std::str::from_utf8(b.event_name()).unwrap_or("log");
            let message = || -> Option<String> {
                if b.message.is_empty() {
                    None
                } else {
                    serde_json::from_slice::<String>(&b.message).ok()
                }
            };
            // Errors and warnings also become events of the innermost recorded span.
            if found.recorded && level <= Level::WARN {
                let add =
                    |rec: &mut SpanRecord| add_span_event(rec, level, event_name, message, now);
                if let Some(fr) = locals.last_mut() {
                    if let Some(rec) = fr.state.record.as_mut() {
                        add(rec);
                    }
                } else if let Some(span) = spans.iter().flatten().next() {
                    let mut ext = span.extensions_mut();
                    if let Some(rec) = ext.get_mut::<SpanState>().and_then(|s| s.record.as_mut()) {
                        add(rec);
                    }
                }
            }
            if let Some(logger) = &sh.otel_logs {
                record::emit(
                    logger,
                    Record {
                        level,
                        target: if is_log {
                            std::borrow::Cow::Owned(log_target.clone())
                        } else {
                            std::borrow::Cow::Borrowed(meta.target())
                        },
                        time: now,
                        event: event_name(),
                        message: message(),
                        attributes: otel.drain(..),
                        inferred: !named,
                        trace: found.trace,
                        span_fields: &b.tail[found.span_fields.clone()],
                        limits: sh.log_limits,
                    },
                );
            }
        };
        // A line logged while this thread's buffers are in use (re-entrant
        // logging from inside a Debug impl) is skipped rather than panic; one
        // logged while the thread exits, after the buffers are gone, gets
        // buffers of its own.
        let done = BUFS.try_with(|bufs| {
            if let Ok(mut bufs) = bufs.try_borrow_mut() {
                write(&mut bufs);
            }
        });
        if done.is_err() {
            write(&mut EventBufs::default());
        }
    }

    /// Writes the line, holds it back in its request's buffer (log sampling
    /// dropped it, but the request may still fail), or counts it as sampled out.
    #[inline]
    fn deliver(&self, b: &LineBufs, level: Level, found: &LineSpan) {
        let sh = &*self.shared;
        let keep = sampling::keep_line(
            sh.log_sampling.as_ref(),
            &sh.sampling_state,
            level,
            b.event_name(),
            found.trace.map(|t| t.0),
        );
        if keep {
            sh.sink.write_parts(&b.head, &b.tail);
        } else if let (Some(req), Some(cfg)) = (&found.request, &sh.log_sampling) {
            sampling::hold(&mut req.lock(), cfg, &b.head, &b.tail);
        } else if let Some(m) = &sh.metrics {
            m.logs_dropped(1, "sampled");
        }
    }
}

/// An error or warning as an event of a recorded span (at most
/// [`MAX_SPAN_EVENTS`] per span: past them, nothing is built).
#[inline]
fn add_span_event<'a>(
    rec: &mut SpanRecord,
    level: Level,
    name: impl FnOnce() -> &'a str,
    message: impl FnOnce() -> Option<String>,
    time: SystemTime,
) {
    if rec.events.len() < MAX_SPAN_EVENTS {
        let mut attrs = vec![KeyValue::new("level", level.as_str())];
        if let Some(m) = message() {
            attrs.push(KeyValue::new("message", m));
        }
        rec.events
            .push(Event::new(name().to_owned(), time, attrs, 0));
    }
}
