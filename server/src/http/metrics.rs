//! Counters of the ingest path and of housekeeping, exposed at `/metrics` in the Prometheus
//! text format.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::housekeeping::Done;

/// Process-wide counters (since start).
#[derive(Default)]
pub struct Metrics {
    ingests: AtomicU64,
    rows: AtomicU64,
    bytes: AtomicU64,
    micros: AtomicU64,
    errors: AtomicU64,
    passes: AtomicU64,
    /// When the last housekeeping pass ended, in seconds since the Unix epoch (0: none yet).
    last_pass: AtomicU64,
    pass_problems: AtomicU64,
    failed_idle: AtomicU64,
    redacted_retention: AtomicU64,
    blobs_removed: AtomicU64,
    blob_bytes_freed: AtomicU64,
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

    /// Counts a housekeeping pass ended at `at` (seconds since the Unix epoch): what it did,
    /// or `None` when it panicked (counted as one problem).
    pub fn housekept(&self, done: Option<&Done>, at: u64) {
        self.passes.fetch_add(1, Ordering::Relaxed);
        self.last_pass.store(at, Ordering::Relaxed);
        let Some(done) = done else {
            self.pass_problems.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.pass_problems
            .fetch_add(done.problems, Ordering::Relaxed);
        self.failed_idle
            .fetch_add(done.failed.len() as u64, Ordering::Relaxed);
        self.redacted_retention
            .fetch_add(done.redacted.len() as u64, Ordering::Relaxed);
        self.blobs_removed
            .fetch_add(done.blobs_removed, Ordering::Relaxed);
        self.blob_bytes_freed
            .fetch_add(done.bytes_freed, Ordering::Relaxed);
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
        metric(
            "pipeproof_housekeeping_passes_total",
            "counter",
            "Housekeeping passes made (failing idle runs, retention, removing freed blob files).",
            get(&self.passes).to_string(),
        );
        metric(
            "pipeproof_housekeeping_last_pass_timestamp_seconds",
            "gauge",
            "When the last housekeeping pass ended, in seconds since the Unix epoch (0: none yet); \
             a pass is made every minute or sooner.",
            get(&self.last_pass).to_string(),
        );
        metric(
            "pipeproof_housekeeping_problems_total",
            "counter",
            "Parts of housekeeping passes that failed and were left for the next pass (see the log).",
            get(&self.pass_problems).to_string(),
        );
        metric(
            "pipeproof_runs_failed_idle_total",
            "counter",
            "Open runs failed for being idle (fail_idle_after).",
            get(&self.failed_idle).to_string(),
        );
        metric(
            "pipeproof_runs_redacted_retention_total",
            "counter",
            "Ended runs redacted for retention (retain).",
            get(&self.redacted_retention).to_string(),
        );
        metric(
            "pipeproof_blob_files_removed_total",
            "counter",
            "Blob files removed by housekeeping: freed by redactions, or named by no step.",
            get(&self.blobs_removed).to_string(),
        );
        metric(
            "pipeproof_blob_bytes_freed_total",
            "counter",
            "Bytes of the blob files removed by housekeeping.",
            get(&self.blob_bytes_freed).to_string(),
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
        assert!(
            text.contains("pipeproof_housekeeping_passes_total 0\n"),
            "{text}"
        );
    }

    #[test]
    fn counts_what_housekeeping_passes_did() {
        let m = Metrics::default();
        let done = Done {
            failed: vec!["a".into(), "b".into()],
            redacted: vec!["c".into()],
            blobs_removed: 3,
            bytes_freed: 4096,
            problems: 1,
        };
        m.housekept(Some(&done), 1_800_000_000);
        m.housekept(None, 1_800_000_060);
        let text = m.render();
        for line in [
            "pipeproof_housekeeping_passes_total 2",
            "pipeproof_housekeeping_last_pass_timestamp_seconds 1800000060",
            "pipeproof_housekeeping_problems_total 2",
            "pipeproof_runs_failed_idle_total 2",
            "pipeproof_runs_redacted_retention_total 1",
            "pipeproof_blob_files_removed_total 3",
            "pipeproof_blob_bytes_freed_total 4096",
            "# TYPE pipeproof_housekeeping_last_pass_timestamp_seconds gauge",
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line}: {text}");
        }
    }
}
