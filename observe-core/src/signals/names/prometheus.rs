//! OpenTelemetry names and units to Prometheus names, as the OpenTelemetry
//! Collector's `prometheus` exporter builds them (its default translation
//! strategy `UnderscoreEscapingWithSuffixes`: `otlptranslator.MetricNamer`
//! with suffixes and without UTF-8, `otlptranslator.LabelNamer` without UTF-8).

/// What the Collector looks at when naming a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A monotonic sum: Prometheus counter, `_total`.
    MonotonicCounter,
    /// A non-monotonic sum: Prometheus gauge.
    NonMonotonicCounter,
    /// A gauge (the only kind that gets `_ratio` for unit `1`).
    Gauge,
    /// An explicit-bucket histogram.
    Histogram,
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// UCUM unit to Prometheus word (`unitMap`); unknown units pass through.
fn main_unit(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The "per" part of `x/y` (`perUnitMap`); unknown units pass through.
fn per_unit(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// `buildUnitSuffixes`: the main and `per_` suffixes, before clean-up.
/// Annotations (`{request}`) and blank parts give nothing.
fn unit_suffixes(unit: &str) -> (String, String) {
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m, Some(p)),
        None => (unit, None),
    };
    let annotated = |s: &str| s.contains(['{', '}']);
    let main = main.trim();
    let main = if main.is_empty() || annotated(main) {
        String::new()
    } else {
        main_unit(main).to_owned()
    };
    let per = match per.map(str::trim) {
        Some(p) if !p.is_empty() && !annotated(p) => format!("per_{}", per_unit(p)),
        _ => String::new(),
    };
    (main, per)
}

/// `cleanUpUnit`: invalid characters to `_`, runs of `_` collapsed, no leading `_`.
fn clean_up_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if is_metric_char(c) { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    match out.strip_prefix('_') {
        Some(rest) => rest.to_owned(),
        None => out,
    }
}

/// The Prometheus metric family name of an OpenTelemetry metric, or `None`
/// when the Collector would reject it (nothing valid left).
pub(crate) fn metric_name(name: &str, unit: &str, kind: Kind) -> Option<String> {
    let mut tokens: Vec<&str> = name
        .split(|c: char| !is_metric_char(c))
        .filter(|t| !t.is_empty())
        .collect();
    let (main, per) = unit_suffixes(unit);
    let mut main = clean_up_unit(&main);
    let mut per = clean_up_unit(&per);
    // addUnitTokens
    if tokens.contains(&main.as_str()) {
        main.clear();
    }
    if per == "per_" {
        per.clear();
    } else {
        if per.ends_with('_') {
            per.pop();
        }
        if tokens.contains(&per.as_str()) {
            per.clear();
        }
    }
    if !per.is_empty() && main.ends_with('_') {
        main.pop();
    }
    if !main.is_empty() {
        tokens.push(&main);
    }
    if !per.is_empty() {
        tokens.push(&per);
    }
    if kind == Kind::MonotonicCounter {
        tokens.retain(|t| *t != "total");
        tokens.push("total");
    }
    if unit == "1" && kind == Kind::Gauge {
        tokens.retain(|t| *t != "ratio");
        tokens.push("ratio");
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if out.is_empty() || (out != name && out.bytes().all(|b| b == b'_')) {
        return None;
    }
    Some(out)
}

/// The Prometheus label name of an attribute key, or `None` when the
/// Collector would reject it (empty, or nothing but underscores after escaping).
pub(crate) fn label_name(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    if out != key && out.bytes().all(|b| b == b'_') {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Kind::*;

    #[test]
    fn collector_metric_names() {
        // Cases from otlptranslator's metric_namer_test.go and observe's instruments.
        let cases: &[(&str, &str, Kind, &str)] = &[
            (
                "http.server.request.duration",
                "s",
                Histogram,
                "http_server_request_duration_seconds",
            ),
            (
                "http.server.active_requests",
                "{request}",
                NonMonotonicCounter,
                "http_server_active_requests",
            ),
            (
                "external_gateway.requests",
                "{request}",
                MonotonicCounter,
                "external_gateway_requests_total",
            ),
            (
                "observe.resource.utilization",
                "",
                Gauge,
                "observe_resource_utilization",
            ),
            (
                "observe.logs.dropped",
                "{line}",
                MonotonicCounter,
                "observe_logs_dropped_total",
            ),
            (
                "observe.tail_sampling.traces",
                "{trace}",
                MonotonicCounter,
                "observe_tail_sampling_traces_total",
            ),
            (
                "observe.tail_sampling.pending_traces",
                "{trace}",
                Gauge,
                "observe_tail_sampling_pending_traces",
            ),
            (
                "system.filesystem.usage",
                "By",
                Gauge,
                "system_filesystem_usage_bytes",
            ),
            (
                "queue.latency",
                "ms",
                Histogram,
                "queue_latency_milliseconds",
            ),
            ("cpu.utilization", "1", Gauge, "cpu_utilization_ratio"),
            (
                "cpu.utilization",
                "1",
                NonMonotonicCounter,
                "cpu_utilization",
            ),
            ("requests", "1", MonotonicCounter, "requests_total"),
            ("hits.total", "", MonotonicCounter, "hits_total"),
            ("total.hits", "", MonotonicCounter, "hits_total"),
            ("throughput", "By/s", Gauge, "throughput_bytes_per_second"),
            ("rate", "1/s", Gauge, "rate_per_second"),
            ("rate", "{req}/s", Gauge, "rate_per_second"),
            ("speed", "m/{x}", Gauge, "speed_meters"),
            ("duration_seconds", "s", Histogram, "duration_seconds"),
            ("temp", "Cel", Gauge, "temp_celsius"),
            ("disk", "%", Gauge, "disk_percent"),
            ("weird", "foo bar", Gauge, "weird_foo_bar"),
            ("2xx.count", "", MonotonicCounter, "_2xx_count_total"),
            ("a..b__c", "", Gauge, "a_b_c"),
            ("unicode.é.name", "", Gauge, "unicode_name"),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(
                metric_name(name, unit, *kind).as_deref(),
                Some(*want),
                "{name} [{unit}] {kind:?}"
            );
        }
        assert_eq!(metric_name("...", "", Gauge), None);
        assert_eq!(metric_name("", "", Gauge), None);
    }

    #[test]
    fn collector_label_names() {
        let cases = [
            ("http.route", "http_route"),
            ("error.type", "error_type"),
            ("already_ok", "already_ok"),
            ("123abc", "key_123abc"),
            ("_private", "key_private"),
            ("__reserved__", "__reserved__"),
            ("weird-key:x", "weird_key_x"),
            ("é", "key_"),
        ];
        for (key, want) in cases {
            assert_eq!(label_name(key).as_deref(), Some(want), "{key}");
        }
        assert_eq!(label_name(""), None);
        assert_eq!(label_name(".."), None);
        assert_eq!(label_name("__"), Some("__".to_owned()));
    }
}
