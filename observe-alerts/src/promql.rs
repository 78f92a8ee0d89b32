//! Small helpers to write PromQL text: string escaping, regex escaping,
//! number and duration formatting, and label selectors.

use std::fmt::Write as _;
use std::time::Duration;

/// Escapes `value` for use inside a double-quoted PromQL string literal.
pub(crate) fn quote(value: &str) -> String {
    quote_escaping(value, char::is_control)
}

/// `value` double-quoted with C-style escapes (`\\`, `\"`, `\n`, `\r`,
/// `\t`) and `\uXXXX` for every other character `escape` selects: the
/// string syntax PromQL and YAML share.
pub(crate) fn quote_escaping(value: &str, escape: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if escape(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Escapes RE2 metacharacters so that `literal` matches only itself.
pub(crate) fn regex_escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if matches!(
            c,
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Formats a number the way a person would write it in PromQL: at most 12
/// significant digits, no exponent, no trailing zeros (`0.001`, `14.4`, `3`).
pub(crate) fn num(x: f64) -> String {
    format!("{}", round_sig(x))
}

/// Rounds to 12 significant digits, which removes binary noise such as
/// `1.0 - 0.999 = 0.0010000000000000009`.
pub(crate) fn round_sig(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.11e}").parse::<f64>().unwrap_or(x)
}

/// Formats a ratio as a percentage: `0.001` -> `0.1%`.
pub(crate) fn pct(ratio: f64) -> String {
    format!("{}%", num(ratio * 100.0))
}

/// Formats a duration as a Prometheus duration (`30d`, `1h`, `1m30s`, `250ms`).
pub(crate) fn duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, len) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= len {
            let _ = write!(out, "{}{unit}", ms / len);
            ms %= len;
        }
    }
    out
}

/// Formats a duration in seconds as a number (`Duration::from_millis(1500)` -> `1.5`).
pub(crate) fn seconds(d: Duration) -> String {
    num(d.as_secs_f64())
}

/// A label matcher operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Re,
    Nre,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::Nre => "!~",
        }
    }
}

/// A list of label matchers, rendered as `{a="b",c=~"d"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Matchers(Vec<(String, Op, String)>);

impl Matchers {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a matcher (value unescaped; quoting happens when rendering).
    pub(crate) fn with(mut self, label: &str, op: Op, value: &str) -> Self {
        self.0.push((label.to_owned(), op, value.to_owned()));
        self
    }

    /// `metric{matchers}`.
    pub(crate) fn select(&self, metric: &str) -> String {
        format!("{metric}{self}")
    }

    /// `metric{matchers}[window]`.
    pub(crate) fn range(&self, metric: &str, window: Duration) -> String {
        format!("{metric}{self}[{}]", duration(window))
    }
}

impl std::fmt::Display for Matchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, (label, op, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{label}{}{}", op.as_str(), quote(value))?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lose_binary_noise() {
        assert_eq!(num(1.0 - 0.999), "0.001");
        assert_eq!(num(0.02 * 720.0), "14.4");
        assert_eq!(num(3.0), "3");
        assert_eq!(num(0.05), "0.05");
        assert_eq!(pct(14.4 * (1.0 - 0.999)), "1.44%");
        assert_eq!(pct(0.01), "1%");
    }

    #[test]
    fn durations_use_prometheus_units() {
        assert_eq!(duration(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(3600)), "1h");
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::from_secs(50 * 3600)), "2d2h");
    }

    #[test]
    fn escaping() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(regex_escape("/users/{id}.json"), r"/users/\{id\}\.json");
        let m = Matchers::new().with("job", Op::Eq, "svc").with(
            "http_route",
            Op::Re,
            &regex_escape("/a/{id}"),
        );
        assert_eq!(m.select("x"), r#"x{job="svc",http_route=~"/a/\\{id\\}"}"#);
    }
}
