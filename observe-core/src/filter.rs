//! The level filter (`RUST_LOG` syntax), applied to log lines and to other
//! crates' spans, never to observe's own spans: turning logs down to `warn`
//! must not switch off tracing, context propagation or the golden signals.

use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Targets whose spans are always enabled: observe's layers and `#[observed]`.
pub(crate) const ALWAYS_TRACED_TARGET_PREFIX: &str = "observe";

pub(crate) enum LogFilter {
    Level(LevelFilter),
    Env(Box<EnvFilter>),
}

fn exempt(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.target().starts_with(ALWAYS_TRACED_TARGET_PREFIX)
}

impl<S> tracing_subscriber::Layer<S> for LogFilter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if exempt(meta) {
            return Interest::always();
        }
        match self {
            LogFilter::Level(l) => {
                if meta.level() <= l {
                    Interest::always()
                } else {
                    Interest::never()
                }
            }
            LogFilter::Env(e) => {
                <EnvFilter as tracing_subscriber::Layer<S>>::register_callsite(e, meta)
            }
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        if exempt(meta) {
            return true;
        }
        match self {
            LogFilter::Level(l) => meta.level() <= l,
            LogFilter::Env(e) => <EnvFilter as Filter<S>>::enabled(e, meta, &ctx),
        }
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        match self {
            LogFilter::Level(_) => true,
            LogFilter::Env(e) => {
                <EnvFilter as tracing_subscriber::Layer<S>>::event_enabled(e, event, ctx)
            }
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // observe's spans are INFO: never hint below that, or tracing's
        // static check would skip them before asking this filter.
        let inner = match self {
            LogFilter::Level(l) => Some(*l),
            LogFilter::Env(e) => <EnvFilter as tracing_subscriber::Layer<S>>::max_level_hint(e),
        };
        inner.map(|l| l.max(LevelFilter::INFO))
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        if let LogFilter::Env(e) = self {
            <EnvFilter as tracing_subscriber::Layer<S>>::on_new_span(e, attrs, id, ctx);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let LogFilter::Env(e) = self {
            <EnvFilter as tracing_subscriber::Layer<S>>::on_record(e, id, values, ctx);
        }
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        if let LogFilter::Env(e) = self {
            <EnvFilter as tracing_subscriber::Layer<S>>::on_enter(e, id, ctx);
        }
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        if let LogFilter::Env(e) = self {
            <EnvFilter as tracing_subscriber::Layer<S>>::on_exit(e, id, ctx);
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        if let LogFilter::Env(e) = self {
            <EnvFilter as tracing_subscriber::Layer<S>>::on_close(e, id, ctx);
        }
    }
}
