//! Housekeeping: what the server does on its own, about once a minute, so that a store
//! keeps no data longer than it should without a scheduler beside it.
//!
//! - **Idle runs** (`fail_idle_after`, off by default): an open run that no step has
//!   reached for longer than this is failed, as `POST /runs/{id}/fail` would, with an error
//!   that says why. A pipeline that died without failing its run otherwise leaves it open for
//!   good, its last step's data kept in full (its carry file) to diff the next step against.
//!   A run with a step post being received is not idle, however long its body takes.
//! - **Retention** (`retain`, off by default): an ended run's diff details and kept data are
//!   redacted once it ended longer ago than this ([`super::redact`]), with a reason naming
//!   the setting. What proves the run stays.
//! - **Blob files**: those a redaction freed and could not remove yet (a `backup` was
//!   reading) are removed, and, once an hour, those no step names (a step that failed after
//!   writing them).
//!
//! Each pass is made of steps that are each crash-safe on their own (a seal, a redaction,
//! a removal), so a server stopped in the middle of one leaves nothing half done that its
//! next start does not finish.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use pipeproof_core::api::{RedactRun, Redacted, RunStatus};
use time::OffsetDateTime;

use super::{Store, db, ingest, instant, redact};
use crate::error::ApiError;

/// What the server does on its own; `None` leaves it undone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Fail open runs that no step has reached for this long.
    pub fail_idle_after: Option<Duration>,
    /// Redact ended runs this long after they ended.
    pub retain: Option<Duration>,
}

/// How often blob files no step names are looked for.
const UNNAMED_EVERY: Duration = Duration::from_secs(3600);

impl Policy {
    /// The time between passes: a minute, or a quarter of the shortest setting (at least a
    /// second), so that a run is failed or redacted at most a quarter late.
    pub fn interval(&self) -> Duration {
        [self.fail_idle_after, self.retain]
            .into_iter()
            .flatten()
            .map(|d| d / 4)
            .fold(Duration::from_secs(60), Duration::min)
            .max(Duration::from_secs(1))
    }

    /// The policy in words, for the server's log as it starts.
    pub fn describe(&self) -> String {
        let idle = match self.fail_idle_after {
            Some(d) => format!("open runs idle for more than {} are failed", show(d)),
            None => "open runs are never failed for being idle".into(),
        };
        let retain = match self.retain {
            Some(d) => format!(
                "ended runs' details and kept data are redacted {} after they end",
                show(d)
            ),
            None => "ended runs keep their details and kept data".into(),
        };
        format!("{idle}; {retain}")
    }
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct Done {
    /// Runs failed for being idle.
    pub failed: Vec<String>,
    /// Runs redacted for retention.
    pub redacted: Vec<String>,
    /// Blob files removed, and their bytes.
    pub blobs_removed: u64,
    /// The bytes of those files.
    pub bytes_freed: u64,
    /// Parts of the pass that failed (logged), left for the next pass.
    pub problems: u64,
}

/// Starts the housekeeping thread: a pass at once, then one every [`Policy::interval`].
/// `report` is told what each pass did (`None` for a pass that panicked), for the server's
/// metrics.
pub fn spawn(
    store: Arc<Store>,
    policy: Policy,
    report: impl Fn(Option<&Done>) + Send + 'static,
) -> Result<()> {
    std::thread::Builder::new()
        .name("housekeeping".into())
        .spawn(move || {
            // The server's start ([`Store::recover`]) has just looked for unnamed blobs.
            let mut unnamed_at = std::time::Instant::now();
            loop {
                let unnamed = unnamed_at.elapsed() >= UNNAMED_EVERY;
                if unnamed {
                    unnamed_at = std::time::Instant::now();
                }
                // A fault in one pass is logged; the next pass comes all the same.
                let one = std::panic::AssertUnwindSafe(|| {
                    pass(&store, &policy, OffsetDateTime::now_utc(), unnamed)
                });
                match std::panic::catch_unwind(one) {
                    Ok(done) => report(Some(&done)),
                    Err(_) => {
                        tracing::error!(
                            "a housekeeping pass panicked; the next one is in its time"
                        );
                        report(None);
                    }
                }
                std::thread::sleep(policy.interval());
            }
        })?;
    Ok(())
}

/// One pass at time `now`; failures are logged, and tried again at the next pass.
pub fn pass(store: &Store, policy: &Policy, now: OffsetDateTime, unnamed: bool) -> Done {
    let mut done = Done::default();
    match store.read(|c| db::open_runs_activity(c, None)) {
        Ok(open) => {
            let ids = open.iter().map(|(id, _)| id.as_str()).collect();
            store.forget_activity_but(&ids);
            if let Some(after) = policy.fail_idle_after {
                done.failed = fail_idle_runs(store, &open, after, now, &mut done.problems);
            }
        }
        Err(e) => {
            done.problems += 1;
            tracing::warn!(error = %e.detail, "open runs: left for the next pass")
        }
    }
    if let Some(retain) = policy.retain {
        for r in apply_retention(store, retain, now, &mut done.problems) {
            done.blobs_removed += r.blobs_removed;
            done.bytes_freed += r.bytes_freed;
            done.redacted.push(r.run_id);
        }
    }
    match store.remove_freed_blobs() {
        Ok((removed, bytes, _)) => {
            done.blobs_removed += removed;
            done.bytes_freed += bytes;
        }
        Err(e) => {
            done.problems += 1;
            tracing::warn!(error = %e.detail, "freed blob files: left for the next pass")
        }
    }
    if unnamed {
        match store.remove_unnamed_blobs() {
            Ok((removed, bytes)) => {
                if removed > 0 {
                    tracing::info!(
                        files = removed,
                        bytes,
                        "removed blob files that no step names (steps that failed after writing them)"
                    );
                }
                done.blobs_removed += removed;
                done.bytes_freed += bytes;
            }
            Err(e) => {
                done.problems += 1;
                tracing::warn!(error = %format!("{e:#}"), "unnamed blob files: left for later")
            }
        }
    }
    done
}

/// Fails those of the `open` runs (with when each last changed in the store) that were
/// idle for longer than `after` before `now`: neither stored a step, nor received part of
/// one, since; nor is the process younger than that ([`Store::seen_since`]). A run whose
/// lock is held (a step being stored, a seal) is active. Returns the runs failed; a run that
/// cannot be failed is logged, counted in `problems` and skipped.
pub fn fail_idle_runs(
    store: &Store,
    open: &[(String, String)],
    after: Duration,
    now: OffsetDateTime,
    problems: &mut u64,
) -> Vec<String> {
    let cutoff = now - after;
    let idle =
        |run_id: &str, stored: &str| before(stored, cutoff) && store.seen_since(run_id) < cutoff;
    let mut failed = Vec::new();
    for (run_id, stored) in open {
        if !idle(run_id, stored) {
            continue;
        }
        // Under the run's lock, as a step or a seal takes it, and asked again: a step may
        // have been stored, or have begun to arrive, meanwhile.
        let lock = store.run_lock(run_id);
        let _guard = match lock.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => continue,
        };
        let result = (|| -> Result<bool, ApiError> {
            let now_open = store.read(|c| db::open_runs_activity(c, Some(run_id)))?;
            let Some((_, stored)) = now_open.first().filter(|(_, s)| idle(run_id, s)) else {
                return Ok(false);
            };
            let row = ingest::open_run(store, run_id)?;
            let seen = store.seen_since(run_id);
            let last = super::rfc3339(instant(stored).map_or(seen, |t| t.max(seen)));
            let error = format!(
                "no step arrived for more than {} (the run was last active at {last}): the \
                 server failed the run (its fail_idle_after setting)",
                show(after)
            );
            ingest::end_run(store, row, RunStatus::Failed, Some(&error))?;
            Ok(true)
        })();
        match result {
            Ok(true) => {
                tracing::info!(run = %run_id, "failed an idle run");
                failed.push(run_id.clone());
            }
            Ok(false) => {}
            Err(e) => {
                *problems += 1;
                tracing::warn!(run = %run_id, error = %e.detail, "an idle run could not be failed; tried again at the next pass")
            }
        }
    }
    failed
}

/// Redacts the ended runs that ended `retain` or longer before `now` and still hold diff
/// details or kept data. Returns what each redaction did; a run that cannot be redacted is
/// logged, counted in `problems` and skipped (the others are not held up behind it).
pub fn apply_retention(
    store: &Store,
    retain: Duration,
    now: OffsetDateTime,
    problems: &mut u64,
) -> Vec<Redacted> {
    let cutoff = now - retain;
    // A second late as text (see the query), then compared as instants.
    let bound = super::rfc3339(cutoff + Duration::from_secs(1));
    let req = RedactRun {
        reason: format!(
            "retention: the run ended more than {} ago (the server's retain setting)",
            show(retain)
        ),
        steps: None,
        statistics: false,
    };
    let ended = match store.read(|c| db::ended_runs_holding_data(c, &bound)) {
        Ok(ended) => ended,
        Err(e) => {
            *problems += 1;
            tracing::warn!(error = %e.detail, "retention: left for the next pass");
            return Vec::new();
        }
    };
    let mut redacted = Vec::new();
    for (run_id, ended) in ended {
        if !before(&ended, cutoff) {
            continue;
        }
        match redact::redact_run(store, &run_id, &req) {
            Ok(r) => redacted.push(r),
            Err(e) => {
                *problems += 1;
                tracing::warn!(run = %run_id, error = %e.detail, "retention: a run could not be redacted; tried again at the next pass")
            }
        }
    }
    redacted
}

/// Whether the RFC 3339 time `t` is before `cutoff` (false when `t` is no time).
fn before(t: &str, cutoff: OffsetDateTime) -> bool {
    instant(t).is_some_and(|t| t < cutoff)
}

/// Parses a duration: a number and a unit (`s`, `m`, `h`, `d`, `w`), or several (`1h30m`).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let example = "write e.g. 90d, 12h, 30m or 1h30m (units s, m, h, d, w)";
    let text = s.trim();
    let mut rest = text;
    let mut total: u64 = 0;
    if rest.is_empty() {
        bail!("no duration given: {example}");
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            bail!("`{text}` is not a duration: {example}");
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| anyhow::anyhow!("`{text}` is too long a duration"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit: u64 = match rest[..unit_len].to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            "" => bail!("`{text}` has a number without a unit: {example}"),
            other => bail!("unknown unit `{other}` in `{text}`: {example}"),
        };
        rest = rest[unit_len..].trim_start();
        total = n
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .filter(|&t| t <= 100 * 365 * 86_400)
            .ok_or_else(|| anyhow::anyhow!("`{text}` is longer than a hundred years"))?;
    }
    if total == 0 {
        bail!("`{text}` is no time at all: give a positive duration, or leave the setting out");
    }
    Ok(Duration::from_secs(total))
}

/// A duration as [`parse_duration`] reads it: in weeks where they give it exactly (`2w`),
/// else in days, hours, minutes and seconds (`90d`, `1d12h`, `1h30m`).
pub fn show(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    if secs.is_multiple_of(604_800) {
        return format!("{}w", secs / 604_800);
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {

    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use pipeproof_core::api::CreateRun;

    use super::*;
    use crate::store::maintain;

    fn open_run(store: &Store, steps: usize) -> String {
        let run = ingest::create_run(
            store,
            CreateRun {
                pipeline: "nightly".into(),
                labels: Default::default(),
                code_version: None,
                params: serde_json::Value::Null,
            },
        )
        .unwrap();
        for i in 0..steps {
            let ids: ArrayRef = std::sync::Arc::new(Int64Array::from(vec![1, 2, i as i64 + 3]));
            let b = RecordBatch::try_from_iter([("id", ids)]).unwrap();
            crate::demo::post(store, &run.id, &format!("s{i}"), Some("id"), &b).unwrap();
        }
        run.id
    }

    fn run(store: &Store, id: &str) -> pipeproof_core::api::Run {
        store.read(|c| db::get_run(c, id)).unwrap().unwrap().run
    }

    /// Open runs idle for longer than the setting are failed, saying why, and their carried
    /// data is dropped. Not idle: a run active since (a part of a step arrived, a step was
    /// stored), one whose lock is held (a step being stored), and any run while the process
    /// is younger than the setting (a server down is no run's idleness). The failures are
    /// sealed and logged like any other.
    #[test]
    fn idle_runs_are_failed_and_their_carried_data_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut store = Store::open(&data).unwrap();
        let now = OffsetDateTime::now_utc();
        let hour = Duration::from_secs(3600);
        // Opened three hours after the runs were made: they are idle since then only.
        store.opened_at = now + 3 * hour;
        let (stepped, empty, receiving, storing) = (
            open_run(&store, 2),
            open_run(&store, 0),
            open_run(&store, 1),
            open_run(&store, 1),
        );
        let open = || store.read(|c| db::open_runs_activity(c, None)).unwrap();
        let carry = |id: &str| store.read(|c| db::get_run(c, id)).unwrap().unwrap().carry;
        let (carried, _) = carry(&stepped).unwrap();
        assert!(store.carry_path(&carried).exists());
        let idle_at = |t| fail_idle_runs(&store, &open(), hour, t, &mut 0);
        assert!(idle_at(now).is_empty());
        assert!(idle_at(now + 2 * hour).is_empty(), "the process is younger");
        assert!(idle_at(now + 4 * hour - Duration::from_secs(1)).is_empty());
        // A part of a step arrived late; a step is being stored (its lock is held).
        store.touch_at(&receiving, now + 4 * hour);
        let lock = store.run_lock(&storing);
        let held = lock.lock().unwrap();
        let failed = idle_at(now + 4 * hour + Duration::from_secs(1));
        assert_eq!(failed, [stepped.as_str(), empty.as_str()]);
        for id in [&stepped, &empty] {
            let r = run(&store, id);
            assert_eq!(r.status, RunStatus::Failed);
            let error = r.error.unwrap();
            assert!(
                error.contains("no step arrived for more than 1h (the run was last active at")
                    && error.contains("fail_idle_after"),
                "{error}"
            );
        }
        assert!(
            !store.carry_path(&carried).exists(),
            "the carried data is dropped"
        );
        assert_eq!(run(&store, &receiving).status, RunStatus::Open);
        assert_eq!(run(&store, &storing).status, RunStatus::Open);
        // A step is refused, saying why the run ended.
        let e = ingest::open_run(&store, &stepped).err().unwrap();
        assert!(
            e.detail.contains("is failed (no step arrived"),
            "{}",
            e.detail
        );
        drop(held);
        assert_eq!(
            idle_at(now + 4 * hour + Duration::from_secs(2)),
            [storing.as_str()]
        );
        assert_eq!(
            idle_at(now + 5 * hour + Duration::from_secs(1)),
            [receiving.as_str()]
        );
        assert!(idle_at(now + 9 * hour).is_empty());
        let report = maintain::check(&data).unwrap();
        assert!(report.damage.is_empty(), "{:?}", report.damage);
        assert_eq!(store.read(db::log_size).unwrap(), 4);
        // Ended runs are forgotten; open ones kept.
        store.touch(&stepped);
        store.forget_activity_but(&open().iter().map(|(id, _)| id.as_str()).collect());
        assert!(store.activity.lock().unwrap().is_empty());
    }

    /// Ended runs are redacted once they ended longer ago than the setting, with a reason
    /// naming it, and once only.
    #[test]
    fn ended_runs_are_redacted_once_retention_is_over() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Store::open(&data).unwrap();
        let demo = crate::demo::load_if_empty(&store).unwrap().unwrap();
        let open = open_run(&store, 2);
        let day = Duration::from_secs(86_400);
        let now = OffsetDateTime::now_utc();
        let policy = Policy {
            fail_idle_after: None,
            retain: Some(30 * day),
        };
        let done = pass(&store, &policy, now + 29 * day, false);
        assert!(done.redacted.is_empty() && done.failed.is_empty());
        let done = pass(&store, &policy, now + 31 * day, false);
        assert_eq!(
            done.redacted,
            [demo.as_str()],
            "the open run is not redacted"
        );
        assert!(done.blobs_removed > 0 && done.bytes_freed > 0, "{done:?}");
        let steps = store.read(|c| db::list_steps(c, &demo)).unwrap();
        for s in &steps[1..] {
            let r = s.step.redacted.as_ref().expect("redacted");
            assert!(
                r.reason.contains("more than 30d") && r.reason.contains("retain"),
                "{}",
                r.reason
            );
            assert!(s.details.is_none());
        }
        assert!(
            steps[0].step.redacted.is_none(),
            "a first step has nothing to remove"
        );
        assert!(
            pass(&store, &policy, now + 99 * day, false)
                .redacted
                .is_empty()
        );
        assert_eq!(run(&store, &open).status, RunStatus::Open);
        let report = maintain::check(&data).unwrap();
        assert!(report.damage.is_empty(), "{:?}", report.damage);
    }

    /// A running server removes blob files no step names, but not one that a step being
    /// stored has written and not yet committed.
    #[test]
    fn unnamed_blobs_are_removed_as_the_server_runs_but_not_a_step_being_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let run = crate::demo::load_if_empty(&store).unwrap().unwrap();
        let put = |text: &str| {
            let text = text.to_string();
            store
                .blobs
                .put_with(move |w| Ok(w.write_all(text.as_bytes())?))
                .unwrap()
        };
        let orphan = put("rows of a step that failed");
        let storing = store.blob_use.read().unwrap();
        let being_stored = put("rows of a step being stored");
        std::thread::scope(|s| {
            let removal = s.spawn(|| store.remove_unnamed_blobs().unwrap());
            // Until the removal waits for the lock, the files listed (std's RwLock then
            // refuses new readers), or ten seconds.
            let waiting = std::time::Instant::now();
            while store.blob_use.try_read().is_ok() && waiting.elapsed().as_secs() < 10 {
                std::thread::sleep(Duration::from_millis(5));
            }
            // The step's commit names its blob.
            store
                .write(|c| {
                    c.execute(
                        "UPDATE steps SET artifact_blob = ?1 WHERE run_id = ?2 AND idx = 0",
                        [&being_stored, &run],
                    )
                })
                .unwrap();
            drop(storing);
            assert_eq!(removal.join().unwrap().0, 1);
        });
        assert!(store.blobs.path(&being_stored).exists());
        assert!(!store.blobs.path(&orphan).exists());
        let policy = Policy::default();
        let orphan = put("another");
        assert_eq!(
            pass(&store, &policy, OffsetDateTime::now_utc(), false).blobs_removed,
            0
        );
        assert_eq!(
            pass(&store, &policy, OffsetDateTime::now_utc(), true).blobs_removed,
            1
        );
        assert!(!store.blobs.path(&orphan).exists());
    }

    #[test]
    fn durations_parse_and_show_in_the_same_notation() {
        for (text, secs) in [
            ("90d", 90 * 86_400),
            ("12h", 43_200),
            ("1h30m", 5400),
            ("1h 30m", 5400),
            ("2w", 1_209_600),
            ("45s", 45),
            ("3 days", 259_200),
            ("36h", 129_600),
        ] {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_secs(secs),
                "{text}"
            );
        }
        assert_eq!(show(Duration::from_secs(90 * 86_400)), "90d");
        assert_eq!(show(Duration::from_secs(14 * 86_400)), "2w");
        assert_eq!(show(Duration::from_secs(5400)), "1h30m");
        assert_eq!(show(Duration::from_secs(129_600)), "1d12h");
        assert_eq!(show(Duration::from_secs(90_061)), "1d1h1m1s");
        assert_eq!(show(Duration::from_secs(0)), "0s");
        for d in [1, 59, 61, 3600, 86_399, 1_000_000] {
            let d = Duration::from_secs(d);
            assert_eq!(parse_duration(&show(d)).unwrap(), d);
        }
        for bad in [
            "",
            "90",
            "d",
            "5 parsecs",
            "-3d",
            "0s",
            "1.5h",
            "99999999999w",
        ] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains('`') || e.contains("no duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn passes_come_at_most_a_minute_and_a_quarter_of_a_setting_apart() {
        let secs = |s| Some(Duration::from_secs(s));
        let p = |idle, retain| Policy {
            fail_idle_after: idle,
            retain,
        };
        assert_eq!(p(None, None).interval(), Duration::from_secs(60));
        assert_eq!(p(secs(86_400), None).interval(), Duration::from_secs(60));
        assert_eq!(
            p(secs(120), secs(86_400)).interval(),
            Duration::from_secs(30)
        );
        assert_eq!(p(None, secs(2)).interval(), Duration::from_secs(1));
    }
}
