//! The machine-readable report: one JSON object, hand-written (the crate has
//! no serde). Times are in microseconds (`_us`), rates per second.

use std::fmt::Write;

use super::report::{LatencySummary, LoadReport};

/// Renders `report` as one JSON object (no trailing newline).
pub fn render(r: &LoadReport) -> String {
    let c = &r.counters;
    let mut o = Object::default();
    o.str("url", &r.url);
    o.str("addr", &r.addr.to_string());
    o.str("method", &r.method);
    o.str("mode", if r.rate.is_some() { "open" } else { "closed" });
    o.num("connections", r.connections as f64);
    o.num("threads", r.threads as f64);
    o.num("pipeline", r.pipeline as f64);
    o.num("duration_s", r.duration.as_secs_f64());
    o.num("warmup_s", r.warmup.as_secs_f64());
    o.num("timeout_s", r.timeout.as_secs_f64());
    o.opt("rate_target", r.rate);
    o.raw(
        "notes",
        &format!(
            "[{}]",
            r.notes
                .iter()
                .map(|n| quote(n))
                .collect::<Vec<_>>()
                .join(",")
        ),
    );
    o.num("requests_sent", c.sent as f64);
    o.num("responses", c.responses as f64);
    o.num("responses_2xx_3xx", r.ok_responses() as f64);
    o.num("bytes_read", c.bytes_read as f64);
    o.num("requests_per_sec", r.requests_per_sec());
    o.num("bytes_per_sec", r.bytes_per_sec());
    o.num("offered_rate", r.offered_rate());
    o.num("scheduled_not_sent", c.not_sent as f64);
    o.num("reconnects", c.reconnects as f64);
    o.raw(
        "latency_corrected",
        if r.corrected() { "true" } else { "false" },
    );
    o.raw("latency_us", &latency(r.latency.as_ref()));
    o.raw(
        "latency_uncorrected_us",
        &latency(r.latency_uncorrected.as_ref()),
    );
    let mut errors = Object::default();
    errors.num("connect", c.connect_errors as f64);
    errors.num("read", c.read_errors as f64);
    errors.num("write", c.write_errors as f64);
    errors.num("timeout", c.timeouts as f64);
    errors.num("parse", c.parse_errors as f64);
    errors.num("aborted", c.aborted as f64);
    errors.num("unanswered", c.unanswered as f64);
    let mut status = Object::default();
    for (code, n) in r.error_statuses() {
        status.num(&code.to_string(), n as f64);
    }
    errors.raw("status", &status.finish());
    o.raw("errors", &errors.finish());
    let f = &r.fairness;
    let mut fair = Object::default();
    fair.num("connections", f.connections as f64);
    fair.num("served", f.served as f64);
    fair.num("starved", f.starved as f64);
    fair.num("min", f.min as f64);
    fair.num("median", f.median);
    fair.num("max", f.max as f64);
    fair.opt("jain", f.jain);
    o.raw("fairness", &fair.finish());
    o.finish()
}

fn latency(l: Option<&LatencySummary>) -> String {
    let Some(l) = l else {
        return "null".to_string();
    };
    let us = |ns: f64| ns / 1e3;
    let mut o = Object::default();
    o.num("count", l.count as f64);
    o.num("min", us(l.min_ns as f64));
    o.num("mean", us(l.mean_ns));
    o.num("stdev", us(l.stdev_ns));
    o.num("max", us(l.max_ns as f64));
    o.num("p50", us(l.p50_ns as f64));
    o.num("p90", us(l.p90_ns as f64));
    o.num("p99", us(l.p99_ns as f64));
    o.num("p99_9", us(l.p99_9_ns as f64));
    o.num("p99_99", us(l.p99_99_ns as f64));
    o.finish()
}

/// A JSON object under construction.
#[derive(Default)]
struct Object {
    body: String,
}

impl Object {
    fn raw(&mut self, key: &str, value: &str) {
        if !self.body.is_empty() {
            self.body.push(',');
        }
        let _ = write!(self.body, "{}:{value}", quote(key));
    }

    fn str(&mut self, key: &str, value: &str) {
        self.raw(key, &quote(value));
    }

    /// Whole numbers print without a fraction; non-finite ones as null.
    fn num(&mut self, key: &str, value: f64) {
        let text = if !value.is_finite() {
            "null".to_string()
        } else if value.fract() == 0.0 && value.abs() < 9e15 {
            format!("{}", value as i64)
        } else {
            // Shortest text that reads back as the same number; never an
            // exponent, which JSON would allow but some readers mishandle.
            format!("{value}")
        };
        self.raw(key, &text);
    }

    fn opt(&mut self, key: &str, value: Option<f64>) {
        match value {
            Some(v) => self.num(key, v),
            None => self.raw(key, "null"),
        }
    }

    fn finish(self) -> String {
        format!("{{{}}}", self.body)
    }
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_numbers() {
        assert_eq!(quote("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
        let mut o = Object::default();
        o.num("i", 3.0);
        o.num("f", 0.125);
        o.num("n", f64::NAN);
        o.opt("none", None);
        assert_eq!(o.finish(), r#"{"i":3,"f":0.125,"n":null,"none":null}"#);
    }
}
