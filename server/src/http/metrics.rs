//! Counters of the ingest path, exposed at `/metrics` in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide counters (since start).
#[derive(Default)]
pub struct Metrics {
    ingests: AtomicU64,
    rows: AtomicU64,
    bytes: AtomicU64,
    micros: AtomicU64,
    errors: AtomicU64,
}

impl Metrics {
    /// Counts a stored step.
    pub fn ingested(&self, rows: u64, bytes: u64, micros: u64) {
        self.ingests.fetch_add(1, Ordering::Relaxed);
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Counts a step post that failed.
    pub fn failed(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "pipeproof_ingests_total",
            "counter",
            "Steps stored.",
            get(&self.ingests).to_string(),
        );
        metric(
            "pipeproof_ingest_rows_total",
            "counter",
            "Rows of the steps stored.",
            get(&self.rows).to_string(),
        );
        metric(
            "pipeproof_ingest_bytes_total",
            "counter",
            "Body bytes of the steps stored.",
            get(&self.bytes).to_string(),
        );
        metric(
            "pipeproof_ingest_seconds_total",
            "counter",
            "Time spent storing steps, from the first body byte to the commit.",
            format!("{:.6}", get(&self.micros) as f64 / 1e6),
        );
        metric(
            "pipeproof_ingest_errors_total",
            "counter",
            "Step posts answered with an error.",
            get(&self.errors).to_string(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_in_prometheus_text() {
        let m = Metrics::default();
        m.ingested(10, 100, 1_500_000);
        m.ingested(5, 50, 500_000);
        m.failed();
        let text = m.render();
        assert!(text.contains("pipeproof_ingests_total 2\n"), "{text}");
        assert!(text.contains("pipeproof_ingest_rows_total 15\n"), "{text}");
        assert!(
            text.contains("pipeproof_ingest_bytes_total 150\n"),
            "{text}"
        );
        assert!(
            text.contains("pipeproof_ingest_seconds_total 2.000000\n"),
            "{text}"
        );
        assert!(text.contains("pipeproof_ingest_errors_total 1\n"), "{text}");
        assert!(text.contains("# TYPE pipeproof_ingests_total counter\n"));
    }
}
