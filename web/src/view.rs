//! What the pages show of a step, built alike from the API's [`Step`] (online) and from a
//! bundle's records (offline), so both use the same components; and small text helpers.

use pipeproof_core::DiffSummary;
use pipeproof_core::api::{Column, Redaction, Step};
use pipeproof_core::bundle::{Manifest, RedactedStep};
use pipeproof_core::stats::ColumnStats;
use pipeproof_web::job::ShownStep;
use yew::prelude::*;

/// One step as the timeline and the step page show it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepView {
    /// Its index.
    pub index: u64,
    /// Its name.
    pub name: String,
    /// Its row count.
    pub rows: u64,
    /// When it was stored.
    pub created_at: String,
    /// Key columns.
    pub key: Vec<String>,
    /// The step's columns, in schema order.
    pub schema: Vec<Column>,
    /// Each column's statistics, in schema order.
    pub stats: Vec<ColumnStats>,
    /// The diff against the previous step.
    pub diff: Option<DiffSummary>,
    /// The record's hash, hex.
    pub hash: String,
    /// When and why its diff details (and kept data) were removed, if they were: from the
    /// server's step, or from a bundle manifest's `redacted`.
    pub redacted: Option<Redaction>,
    /// When and why its column statistics were removed, if they were (`stats` is then
    /// empty): from the server's step, or from a bundle manifest's `statistics_redacted`.
    pub statistics_redacted: Option<Redaction>,
}

impl StepView {
    /// From a step the server sent.
    pub fn from_api(s: &Step) -> StepView {
        StepView {
            index: s.record.index,
            name: s.record.step.clone(),
            rows: s.record.rows,
            created_at: s.record.created_at.clone(),
            key: s.record.key.clone(),
            schema: s.schema.clone(),
            stats: s.stats.clone(),
            diff: s.diff.clone(),
            hash: s.hash.to_hex(),
            redacted: s.redacted.clone(),
            statistics_redacted: s.statistics_redacted.clone(),
        }
    }

    /// Every step of a bundle.
    pub fn from_bundle(manifest: &Manifest, steps: &[ShownStep]) -> Vec<StepView> {
        manifest
            .records
            .iter()
            .zip(steps)
            .map(|(r, s)| StepView {
                index: r.index,
                name: r.step.clone(),
                rows: r.rows,
                created_at: r.created_at.clone(),
                key: r.key.clone(),
                // The server's schema is the record's columns; a bundle has the same.
                schema: Column::of_record(r),
                stats: s.stats.clone(),
                diff: s.diff.clone(),
                hash: r.hash().to_hex(),
                redacted: redaction_in(manifest, r.index),
                statistics_redacted: manifest
                    .statistics_redaction(r.index as usize)
                    .map(redaction_of),
            })
            .collect()
    }

    /// Whether the schema changed at this step.
    pub fn schema_changed(&self) -> bool {
        self.diff.as_ref().is_some_and(|d| !d.schema.is_empty())
    }
}

/// A step's redaction as a bundle's manifest lists it.
pub fn redaction_in(manifest: &Manifest, index: u64) -> Option<Redaction> {
    manifest
        .redacted
        .iter()
        .find(|r| r.step == index)
        .map(redaction_of)
}

/// A redaction a bundle's manifest lists, as the server's API says it.
fn redaction_of(r: &RedactedStep) -> Redaction {
    Redaction {
        at: r.at.clone(),
        reason: r.reason.clone(),
    }
}

/// The key a run's rows are traced by, as the server's trace takes it: that of the last
/// step sent with a key. `None` when no step has one (a multiset run): its rows cannot be
/// followed from step to step.
pub fn trace_key(steps: &[Step]) -> Option<&[String]> {
    steps
        .iter()
        .rev()
        .map(|s| s.record.key.as_slice())
        .find(|k| !k.is_empty())
}

/// Why a run without a key offers no row trace, in a line.
pub const NO_TRACE: &str = "Rows cannot be traced in this run: no step was sent with a key \
     column, so nothing names a row from one step to the next.";

/// A count with thousands separators: `1,234,567`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count and its noun: `1 run`, `1,234 runs`.
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// The first 12 hex digits of a hash.
pub fn short(hex: &str) -> String {
    hex.chars().take(12).collect()
}

/// A timestamp without its fractional seconds: `2026-11-26 12:00:00Z`.
pub fn time(ts: &str) -> String {
    let t = ts.replacen('T', " ", 1);
    match t.find('.') {
        Some(dot) => {
            let zone: String = t[dot..]
                .chars()
                .skip_while(|c| *c == '.' || c.is_ascii_digit())
                .collect();
            format!("{}{zone}", &t[..dot])
        }
        None => t,
    }
}

/// A JSON value as a cell shows it. The text is isolated (`<bdi>`), so that right-to-left
/// text or a direction override in the data cannot reorder what stands around it (an old
/// value shown after its new one); a null is marked apart from the text `null`, and an empty
/// string is shown as such rather than as nothing.
pub fn value(v: Option<&serde_json::Value>) -> Html {
    match v {
        None | Some(serde_json::Value::Null) => {
            html! { <span class="null" title="null: no value">{"null"}</span> }
        }
        Some(serde_json::Value::String(s)) => text(s),
        Some(other) => text(&other.to_string()),
    }
}

/// A text from the data (a value, a statistic's minimum), isolated like [`value`]'s. A number
/// or a time is kept whole on one line (broken in two, it reads as two values); other text
/// may wrap anywhere, so that a long one does not stretch its table.
pub fn text(s: &str) -> Html {
    if s.is_empty() {
        html! { <span class="empty" title="an empty string">{"empty string"}</span> }
    } else if number_or_time(s) {
        html! { <bdi class="whole">{s.to_string()}</bdi> }
    } else {
        html! { <bdi>{s.to_string()}</bdi> }
    }
}

/// Whether a text reads as a number, a date or a time (`-1234.5`, `1e-9`,
/// `2026-11-26T12:00:00Z`): a short run of digits and the signs numbers and times use.
pub fn number_or_time(s: &str) -> bool {
    s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.')
        && s.contains(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_digit() || "+-.,:eETZ ".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
    }

    #[test]
    fn counted_nouns_agree() {
        assert_eq!(counted(0, "run", "runs"), "0 runs");
        assert_eq!(counted(1, "run", "runs"), "1 run");
        assert_eq!(counted(1234, "record", "records"), "1,234 records");
    }

    #[test]
    fn numbers_and_times_are_told_from_text() {
        for whole in [
            "0",
            "-1234567.891234",
            "9007199254740993",
            "1e-9",
            "2026-11-26",
            "2026-11-26T12:00:00.123Z",
            "2026-11-26 12:00:00+01:00",
        ] {
            assert!(number_or_time(whole), "{whole}");
        }
        for wraps in ["", "c9", "EU|4711", "-", "open", "a 1", &"1".repeat(41)] {
            assert!(!number_or_time(wraps), "{wraps}");
        }
    }

    #[test]
    fn times_lose_fractions_keep_zone() {
        assert_eq!(time("2026-11-26T12:00:00.123456Z"), "2026-11-26 12:00:00Z");
        assert_eq!(time("2026-11-26T12:00:00Z"), "2026-11-26 12:00:00Z");
    }
}
