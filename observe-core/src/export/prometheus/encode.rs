//! Collected OpenTelemetry metrics to Prometheus text (0.0.4) and OpenMetrics
//! (1.0.0), laid out as the Collector's exporter (client_golang's `expfmt`)
//! writes them: families sorted by name, labels sorted by name, `le` last,
//! series sorted by label values, Go's float formatting.
//!
//! Why observe's own encoder rather than `prometheus-client` (or the
//! `prometheus` crate): those encode their own registries, not the
//! OpenTelemetry SDK's collected data, so using one would mean copying every
//! point into a second metric model at each scrape; neither writes the
//! Collector's names, `otel_scope_*` labels and `target_info`, nor observe's
//! exemplars. What it must agree with is the Collector's output and the
//! Prometheus parsers: `tests/prometheus.rs` compares the text exposition
//! byte for byte with the Collector's (`text_exposition_is_exactly_what_the_collector_writes`)
//! and runs both formats through `promtool` and Python's `prometheus_client`.

use crate::exemplars::{AttributesKey, Exemplar, Exemplars};
use crate::signals::names::{self as naming, Kind};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};
use opentelemetry_sdk::Resource;
use std::collections::HashMap;
use std::fmt::Write as _;

/// The two exposition formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ExpositionFormat {
    /// Prometheus text format 0.0.4 (no exemplars).
    #[default]
    Text,
    /// OpenMetrics 1.0.0 text, with exemplars on histogram buckets.
    OpenMetrics,
}

impl ExpositionFormat {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ExpositionFormat::Text => "text/plain; version=0.0.4; charset=utf-8",
            ExpositionFormat::OpenMetrics => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
        }
    }

    /// The format a client asks for in its `Accept` header: OpenMetrics when
    /// `application/openmetrics-text` has the highest quality, text otherwise
    /// (also for a missing or unparsable header).
    pub fn from_accept(accept: &str) -> Self {
        let mut best = ExpositionFormat::Text;
        let mut best_q = 0.0_f32;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let mut q = 1.0_f32;
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = v.trim().parse().unwrap_or(0.0);
                    }
                }
            }
            let format = if media.eq_ignore_ascii_case("application/openmetrics-text") {
                ExpositionFormat::OpenMetrics
            } else if media.eq_ignore_ascii_case("text/plain")
                || media.eq_ignore_ascii_case("text/*")
                || media == "*/*"
            {
                ExpositionFormat::Text
            } else {
                continue;
            };
            if q > best_q {
                best = format;
                best_q = q;
            }
        }
        best
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FamilyType {
    Counter,
    Gauge,
    Histogram,
}

struct Family {
    name: String,
    help: String,
    ty: FamilyType,
    series: Vec<Series>,
}

struct Series {
    labels: Vec<(String, String)>,
    sample: Sample,
}

enum Sample {
    Number(f64),
    Histogram(Hist),
}

struct Hist {
    /// Finite upper bounds with their cumulative counts.
    buckets: Vec<(f64, u64)>,
    count: u64,
    sum: f64,
    /// One per bucket of `buckets`, then `+Inf`.
    exemplars: Vec<Option<Exemplar>>,
}

/// Encodes everything in `rm`.
pub(crate) fn encode(
    rm: &ResourceMetrics,
    exemplars: &Exemplars,
    format: ExpositionFormat,
) -> String {
    let families = families(rm, exemplars);
    let mut out = String::with_capacity(4096);
    write_families(&mut out, &families, format);
    out
}

fn families(rm: &ResourceMetrics, exemplars: &Exemplars) -> Vec<Family> {
    let mut b = Builder {
        families: Vec::new(),
        index: HashMap::new(),
        exemplars,
    };
    if let Some(t) = target_info(rm.resource()) {
        b.index.insert(t.name.clone(), 0);
        b.families.push(t);
    }
    for sm in rm.scope_metrics() {
        let scope = scope_labels(sm.scope());
        for m in sm.metrics() {
            match m.data() {
                AggregatedMetrics::F64(d) => b.add(m, d, &scope, |v| v),
                AggregatedMetrics::U64(d) => b.add(m, d, &scope, |v| v as f64),
                AggregatedMetrics::I64(d) => b.add(m, d, &scope, |v| v as f64),
            }
        }
    }
    let mut families = b.families;
    families.retain(|f| !f.series.is_empty());
    families.sort_by(|a, b| a.name.cmp(&b.name));
    for f in &mut families {
        // client_golang's metricSorter: fewer labels first, then label values in label-name order.
        f.series.sort_by(|a, b| {
            a.labels.len().cmp(&b.labels.len()).then_with(|| {
                a.labels
                    .iter()
                    .map(|(_, v)| v)
                    .cmp(b.labels.iter().map(|(_, v)| v))
            })
        });
    }
    families
}

struct Builder<'a> {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    exemplars: &'a Exemplars,
}

impl Builder<'_> {
    fn add<T: Copy>(
        &mut self,
        m: &Metric,
        data: &MetricData<T>,
        scope: &[(String, String)],
        conv: impl Fn(T) -> f64,
    ) {
        let (kind, ty) = match data {
            MetricData::Sum(s) if s.is_monotonic() => (Kind::MonotonicCounter, FamilyType::Counter),
            MetricData::Sum(_) => (Kind::NonMonotonicCounter, FamilyType::Gauge),
            MetricData::Gauge(_) => (Kind::Gauge, FamilyType::Gauge),
            MetricData::Histogram(_) => (Kind::Histogram, FamilyType::Histogram),
            // Native histograms have no text representation.
            MetricData::ExponentialHistogram(_) => return,
        };
        let Some(name) = naming::metric_name(m.name(), m.unit(), kind) else {
            return;
        };
        let idx = match self.index.get(&name) {
            // A type conflict: the Collector keeps the first definition and drops the rest.
            Some(&i) if self.families.get(i).is_some_and(|f| f.ty != ty) => return,
            Some(&i) => i,
            None => {
                self.index.insert(name.clone(), self.families.len());
                self.families.push(Family {
                    name,
                    help: m.description().to_owned(),
                    ty,
                    series: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        let mut series = Vec::new();
        match data {
            MetricData::Sum(s) => {
                for p in s.data_points() {
                    if let Some(labels) = point_labels(p.attributes(), scope) {
                        series.push(Series {
                            labels,
                            sample: Sample::Number(conv(p.value())),
                        });
                    }
                }
            }
            MetricData::Gauge(g) => {
                for p in g.data_points() {
                    if let Some(labels) = point_labels(p.attributes(), scope) {
                        series.push(Series {
                            labels,
                            sample: Sample::Number(conv(p.value())),
                        });
                    }
                }
            }
            MetricData::Histogram(h) => {
                for p in h.data_points() {
                    let Some(labels) = point_labels(p.attributes(), scope) else {
                        continue;
                    };
                    let mut buckets = Vec::new();
                    let mut cumulative = 0_u64;
                    for (bound, count) in p.bounds().zip(p.bucket_counts()) {
                        cumulative = cumulative.saturating_add(count);
                        if bound.is_finite() {
                            buckets.push((bound, cumulative));
                        }
                    }
                    let bounds: Vec<f64> = buckets.iter().map(|(b, _)| *b).collect();
                    let key = AttributesKey::from_attributes(p.attributes());
                    series.push(Series {
                        labels,
                        sample: Sample::Histogram(Hist {
                            buckets,
                            count: p.count(),
                            sum: conv(p.sum()),
                            exemplars: self.exemplars.for_buckets(m.name(), key, &bounds),
                        }),
                    });
                }
            }
            MetricData::ExponentialHistogram(_) => {}
        }
        if let Some(f) = self.families.get_mut(idx) {
            f.series.extend(series);
        }
    }
}

/// `target_info`: the resource's attributes but those the Collector turns
/// into `job` and `instance` (which a direct scrape gets from its config).
fn target_info(resource: &Resource) -> Option<Family> {
    let mut labels = Vec::new();
    for (k, v) in resource.iter() {
        let key = k.as_str();
        if matches!(
            key,
            "service.name" | "service.namespace" | "service.instance.id"
        ) {
            continue;
        }
        if let Some(name) = naming::label_name(key) {
            labels.push((name, key.to_owned(), value_string(v)));
        }
    }
    if labels.is_empty() {
        return None;
    }
    Some(Family {
        name: "target_info".to_owned(),
        help: "Target metadata".to_owned(),
        ty: FamilyType::Gauge,
        series: vec![Series {
            labels: merge(labels),
            sample: Sample::Number(1.0),
        }],
    })
}

/// The labels the Collector adds to every point of a scope.
fn scope_labels(scope: &InstrumentationScope) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for kv in scope.attributes() {
        if let Some(name) = naming::label_name(&format!("otel_scope_{}", kv.key.as_str())) {
            out.push((name, value_string(&kv.value)));
        }
    }
    out.push(("otel_scope_name".to_owned(), scope.name().to_owned()));
    out.push((
        "otel_scope_version".to_owned(),
        scope.version().unwrap_or_default().to_owned(),
    ));
    out.push((
        "otel_scope_schema_url".to_owned(),
        scope.schema_url().unwrap_or_default().to_owned(),
    ));
    out
}

/// A point's labels, sorted, or `None` when an attribute key cannot be a
/// label name (the Collector drops such a point).
fn point_labels<'a>(
    attributes: impl Iterator<Item = &'a KeyValue>,
    scope: &[(String, String)],
) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::with_capacity(scope.len() + 5);
    for kv in attributes {
        let key = kv.key.as_str();
        labels.push((
            naming::label_name(key)?,
            key.to_owned(),
            value_string(&kv.value),
        ));
    }
    for (name, value) in scope {
        labels.push((name.clone(), name.clone(), value.clone()));
    }
    Some(merge(labels))
}

/// Sorts by label name and joins the values of keys that escape to the same
/// name with `;`, in the order of their original keys.
fn merge(mut labels: Vec<(String, String, String)>) -> Vec<(String, String)> {
    labels.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut out: Vec<(String, String)> = Vec::with_capacity(labels.len());
    for (name, _, value) in labels {
        match out.last_mut() {
            Some((n, v)) if *n == name => {
                v.push(';');
                v.push_str(&value);
            }
            _ => out.push((name, value)),
        }
    }
    out
}

/// An attribute value as the Collector's `pcommon.Value.AsString`.
fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.as_str().to_owned(),
        Value::I64(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::F64(f) if f.is_nan() => "NaN".to_owned(),
        Value::F64(f) if f.is_infinite() => if *f > 0.0 { "+Inf" } else { "-Inf" }.to_owned(),
        Value::F64(f) => f.to_string(),
        Value::Array(a) => {
            use opentelemetry::Array;
            let json = match a {
                Array::Bool(v) => serde_json::to_string(v),
                Array::I64(v) => serde_json::to_string(v),
                Array::F64(v) => serde_json::to_string(v),
                Array::String(v) => {
                    serde_json::to_string(&v.iter().map(|s| s.as_str()).collect::<Vec<_>>())
                }
                other => Ok(other.to_string()),
            };
            json.unwrap_or_else(|_| a.to_string())
        }
        other => other.to_string(),
    }
}

fn write_families(out: &mut String, families: &[Family], format: ExpositionFormat) {
    let om = format == ExpositionFormat::OpenMetrics;
    for f in families {
        // OpenMetrics names a counter family without its `_total`.
        let meta = match (om, f.ty) {
            (true, FamilyType::Counter) => f.name.strip_suffix("_total").unwrap_or(&f.name),
            _ => f.name.as_str(),
        };
        out.push_str("# HELP ");
        out.push_str(meta);
        out.push(' ');
        escape(out, &f.help, om);
        out.push_str("\n# TYPE ");
        out.push_str(meta);
        out.push_str(match f.ty {
            FamilyType::Counter => " counter\n",
            FamilyType::Gauge => " gauge\n",
            FamilyType::Histogram => " histogram\n",
        });
        for s in &f.series {
            match &s.sample {
                Sample::Number(v) => {
                    out.push_str(meta);
                    if om && f.ty == FamilyType::Counter {
                        out.push_str("_total");
                    }
                    write_labels(out, &s.labels, None);
                    out.push(' ');
                    write_float(out, *v, om);
                    out.push('\n');
                }
                Sample::Histogram(h) => write_histogram(out, &f.name, &s.labels, h, om),
            }
        }
    }
    if om {
        out.push_str("# EOF\n");
    }
}

fn write_histogram(out: &mut String, name: &str, labels: &[(String, String)], h: &Hist, om: bool) {
    let mut le = String::new();
    let infinity = (f64::INFINITY, h.count);
    for (i, (bound, count)) in h.buckets.iter().chain([&infinity]).enumerate() {
        le.clear();
        write_float(&mut le, *bound, om);
        out.push_str(name);
        out.push_str("_bucket");
        write_labels(out, labels, Some(&le));
        out.push(' ');
        write_count(out, *count, om);
        if om {
            if let Some(Some(e)) = h.exemplars.get(i) {
                write_exemplar(out, e);
            }
        }
        out.push('\n');
    }
    out.push_str(name);
    out.push_str("_sum");
    write_labels(out, labels, None);
    out.push(' ');
    write_float(out, h.sum, om);
    out.push('\n');
    out.push_str(name);
    out.push_str("_count");
    write_labels(out, labels, None);
    out.push(' ');
    write_count(out, h.count, om);
    out.push('\n');
}

fn write_exemplar(out: &mut String, e: &Exemplar) {
    out.push_str(" # {span_id=\"");
    crate::hex::push_str(out, &e.span_id);
    out.push_str("\",trace_id=\"");
    crate::hex::push_str(out, &e.trace_id);
    out.push_str("\"} ");
    write_float(out, e.value, true);
    if e.unix_nanos > 0 {
        out.push(' ');
        write_float(out, e.unix_nanos as f64 / 1e9, true);
    }
}

fn write_labels(out: &mut String, labels: &[(String, String)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let pairs = labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain(le.map(|v| ("le", v)));
    for (name, value) in pairs {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        escape(out, value, true);
        out.push('"');
    }
    out.push('}');
}

/// Escapes `\` and newlines, and `"` when `quote` (label values; OpenMetrics HELP).
fn escape(out: &mut String, s: &str, quote: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn write_count(out: &mut String, n: u64, om: bool) {
    if om {
        let _ = write!(out, "{n}");
    } else {
        write_float(out, n as f64, false);
    }
}

/// A sample value or `le` as client_golang writes it: Go's `%g` (shortest
/// round-trip digits, exponent from 1e+06 and below 1e-04), and in
/// OpenMetrics always with a `.` or an exponent (`1.0`, `10.0`, `2.5`).
pub(crate) fn write_float(out: &mut String, f: f64, om: bool) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
    } else if f == 0.0 {
        out.push_str(if om { "0.0" } else { "0" });
    } else {
        let start = out.len();
        go_g(out, f);
        if om && !out[start..].contains(['.', 'e']) {
            out.push_str(".0");
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` for a finite, non-zero `f`.
fn go_g(out: &mut String, f: f64) {
    // Rust's `{:e}` gives the same shortest round-trip digits: `d.ddde±x`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: Vec<u8> = mantissa.bytes().filter(|b| *b != b'.').collect();
    let nd = digits.len() as i32;
    if negative {
        out.push('-');
    }
    let digit = |i: i32| -> char {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .map_or('0', |d| char::from(*d))
    };
    if !(-4..6).contains(&exp) {
        out.push(digit(0));
        if nd > 1 {
            out.push('.');
            (1..nd).for_each(|i| out.push(digit(i)));
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if exp >= 0 {
        (0..=exp).for_each(|i| out.push(digit(i)));
        if nd - 1 > exp {
            out.push('.');
            (exp + 1..nd).for_each(|i| out.push(digit(i)));
        }
    } else {
        out.push_str("0.");
        (exp + 1..0).for_each(|_| out.push('0'));
        (0..nd).for_each(|i| out.push(digit(i)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(f: f64, om: bool) -> String {
        let mut s = String::new();
        write_float(&mut s, f, om);
        s
    }

    #[test]
    fn floats_as_go_writes_them() {
        // strconv.FormatFloat(f, 'g', -1, 64), and client_golang's special cases.
        let cases = [
            (1.0, "1", "1.0"),
            (0.0, "0", "0.0"),
            (-0.0, "0", "0.0"),
            (-1.0, "-1", "-1.0"),
            (0.005, "0.005", "0.005"),
            (0.0001, "0.0001", "0.0001"),
            (0.00001, "1e-05", "1e-05"),
            (2.5, "2.5", "2.5"),
            (10.0, "10", "10.0"),
            (123456.0, "123456", "123456.0"),
            (1234567.0, "1.234567e+06", "1.234567e+06"),
            (1e6, "1e+06", "1e+06"),
            (1277952.0, "1.277952e+06", "1.277952e+06"),
            (-0.25, "-0.25", "-0.25"),
            (0.1 + 0.2, "0.30000000000000004", "0.30000000000000004"),
            (1.5e300, "1.5e+300", "1.5e+300"),
            (123.456, "123.456", "123.456"),
            (
                1_700_000_000.123_456_7,
                "1.7000000001234567e+09",
                "1.7000000001234567e+09",
            ),
            (f64::INFINITY, "+Inf", "+Inf"),
            (f64::NEG_INFINITY, "-Inf", "-Inf"),
            (f64::NAN, "NaN", "NaN"),
        ];
        for (f, text, om) in cases {
            assert_eq!(g(f, false), text, "{f:?}");
            assert_eq!(g(f, true), om, "{f:?}");
        }
    }

    #[test]
    fn accept_negotiation() {
        use ExpositionFormat::*;
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(ExpositionFormat::from_accept(prometheus), OpenMetrics);
        assert_eq!(
            ExpositionFormat::from_accept(
                "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.3"
            ),
            Text
        );
        assert_eq!(
            ExpositionFormat::from_accept("text/html,application/xhtml+xml,*/*;q=0.8"),
            Text
        );
        assert_eq!(ExpositionFormat::from_accept(""), Text);
        assert_eq!(
            ExpositionFormat::from_accept("application/openmetrics-text; q=0"),
            Text
        );
        assert_eq!(
            ExpositionFormat::from_accept("Application/OpenMetrics-Text"),
            OpenMetrics
        );
    }

    #[test]
    fn attribute_values_as_the_collector_prints_them() {
        assert_eq!(value_string(&Value::from(1.5)), "1.5");
        assert_eq!(value_string(&Value::from(1e21)), "1000000000000000000000");
        assert_eq!(value_string(&Value::from(f64::INFINITY)), "+Inf");
        assert_eq!(value_string(&Value::from(200_i64)), "200");
        assert_eq!(value_string(&Value::from(true)), "true");
        let arr = Value::Array(opentelemetry::Array::String(vec!["a".into(), "b\"".into()]));
        assert_eq!(value_string(&arr), r#"["a","b\""]"#);
    }
}
