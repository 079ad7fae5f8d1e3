//! Redaction: an ended run's diff details (the added, removed and changed rows, which hold
//! data values) and kept data removed from the store, for data that must not be kept (an
//! erasure request, a retention period). What proves the run stays: its records (which
//! still bind the details' hash), row hashes, statistics, diff counts, seal and log entry.
//! Its bundles then hold no detail members for the steps redacted, and say so
//! (`bundle-v1.md` §5).

use pipeproof_core::api::{MAX_REASON, RedactRun, Redacted, Redaction, RunStatus, check_text};
use pipeproof_core::bundle::RedactedStep;

use super::{Store, db, now};
use crate::error::ApiError;

/// Redacts the steps asked for (all by default) of an ended run. Steps redacted before keep
/// their first redaction; a step that holds nothing to remove (a first step stored without
/// its data) is left as it is. Kept bundles of the run are dropped first; the blob files
/// freed are listed in the redaction's transaction and removed after it, when no step
/// names them ([`Store::remove_freed_blobs`]).
pub fn redact_run(store: &Store, run_id: &str, req: &RedactRun) -> Result<Redacted, ApiError> {
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::bad_request(
            "invalid-redaction",
            "a redaction needs a reason (`reason`): it is kept with each step and shown in \
             the run's bundles",
        ));
    }
    check_text("the reason", reason, MAX_REASON)
        .map_err(|e| ApiError::bad_request("invalid-redaction", e))?;
    let row = store
        .read(|c| db::get_run(c, run_id))?
        .ok_or_else(|| ApiError::unknown_run(run_id))?;
    if row.run.status == RunStatus::Open {
        return Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "run-open",
            format!(
                "run `{run_id}` is open: its last step's data is kept to diff the next step \
                 against until the run ends; seal or fail it, then redact it"
            ),
        ));
    }
    let steps = store.read(|c| db::list_steps(c, run_id))?;
    let asked: Vec<u64> = match &req.steps {
        Some(list) if list.is_empty() => {
            return Err(ApiError::bad_request(
                "invalid-redaction",
                "`steps` is empty: name the steps to redact, or leave `steps` out for all",
            ));
        }
        Some(list) => {
            if let Some(bad) = list.iter().find(|&&i| i >= steps.len() as u64) {
                return Err(ApiError::not_found(
                    "unknown-step",
                    format!(
                        "run `{run_id}` has {} step(s), numbered from 0; there is no step {bad}",
                        steps.len()
                    ),
                ));
            }
            let mut list = list.clone();
            list.sort_unstable();
            list.dedup();
            list
        }
        None => (0..steps.len() as u64).collect(),
    };
    let (mut already, mut nothing, mut chosen) = (Vec::new(), Vec::new(), Vec::new());
    let mut statistics = Vec::new();
    for i in asked {
        let s = &steps[i as usize];
        let data = s.step.redacted.is_none() && (s.details.is_some() || s.step.artifact);
        let stats = req.statistics && s.step.statistics_redacted.is_none();
        if data {
            chosen.push(i);
        }
        if stats {
            statistics.push(i);
        }
        if data || stats {
            continue;
        }
        if s.step.redacted.is_some() || s.step.statistics_redacted.is_some() {
            already.push(i);
        } else {
            nothing.push(i);
        }
    }
    let at = now();
    let mut done = Redacted {
        run_id: run_id.to_string(),
        at: at.clone(),
        steps: Vec::new(),
        statistics: Vec::new(),
        already,
        nothing,
        blobs_removed: 0,
        bytes_freed: 0,
        blobs_pending: 0,
    };
    if !chosen.is_empty() || !statistics.is_empty() {
        // No export of this run keeps a bundle meanwhile.
        let exports = store.exports.run_lock(run_id);
        let _exports = exports.lock().unwrap_or_else(|p| p.into_inner());
        store.exports.drop_kept(run_id).map_err(|e| {
            ApiError::internal(format!(
                "cannot remove a kept bundle of run `{run_id}` (nothing was redacted): {e}"
            ))
        })?;
        (done.steps, done.statistics) = store.write(|c| {
            let tx = c.transaction()?;
            let marked = db::redact_steps(&tx, run_id, &chosen, &at, reason)?;
            let stats = db::redact_statistics(&tx, run_id, &statistics, &at, reason)?;
            tx.commit()?;
            Ok((marked, stats))
        })?;
        // The rows' earlier versions out of the write-ahead log (best effort: a reader with
        // an older snapshot holds it, and then the next redaction or the server's stop
        // empties it).
        match store.write(|c| db::checkpoint(c)) {
            Ok(true) => {}
            Ok(false) => tracing::info!(
                "a reader held the log of the database: the old versions of redacted rows \
                 leave it at the next redaction or when the server stops"
            ),
            Err(e) => {
                tracing::warn!(error = %e.detail, "the log of the database was not emptied after a redaction")
            }
        }
        // Done meanwhile by another redaction of the run.
        done.already.extend(
            (chosen.iter().chain(&statistics))
                .filter(|i| !done.steps.contains(i) && !done.statistics.contains(i)),
        );
        done.already.sort_unstable();
        done.already.dedup();
    }
    // The files freed, by this redaction or by one that could not remove them: committed
    // already, so a failure here leaves them listed for the next redaction or start, and
    // the reply says how many are left.
    match store.remove_freed_blobs() {
        Ok((removed, bytes, left)) => {
            done.blobs_removed = removed;
            done.bytes_freed = bytes;
            done.blobs_pending = left;
        }
        Err(e) => {
            tracing::warn!(error = %e.detail, "freed blob files are left for later");
            done.blobs_pending = store.read(db::pending_removals)?.len() as u64;
        }
    }
    tracing::info!(
        run = run_id,
        steps = ?done.steps,
        blobs = done.blobs_removed,
        left = done.blobs_pending,
        bytes = done.bytes_freed,
        "redacted"
    );
    Ok(done)
}

/// What a bundle says of its steps' redactions: the steps whose details it does not hold,
/// and those whose statistics it does not hold.
pub fn in_bundle(steps: &[db::StepRow]) -> (Vec<RedactedStep>, Vec<RedactedStep>) {
    let listed = |s: &db::StepRow, r: &Redaction| RedactedStep {
        step: s.step.record.index,
        at: r.at.clone(),
        reason: r.reason.clone(),
    };
    let details = (steps.iter())
        .filter(|s| s.details.is_none() && s.step.record.details_hash.is_some())
        .filter_map(|s| Some(listed(s, s.step.redacted.as_ref()?)))
        .collect();
    let statistics = (steps.iter())
        .filter_map(|s| Some(listed(s, s.step.statistics_redacted.as_ref()?)))
        .collect();
    (details, statistics)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob a redaction freed, which a step being stored names again (equal blobs are
    /// shared), is not removed: the removal waits for the step's commit, then finds it named.
    #[test]
    fn a_freed_blob_that_a_step_being_stored_shares_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let run = crate::demo::load_if_empty(&store).unwrap().unwrap();
        // A reader holds blobs.lock: the redaction leaves what it freed listed.
        let reader = super::super::lock_blob_readers(store.dir()).unwrap();
        let req = RedactRun {
            reason: "erasure".into(),
            steps: Some(vec![1, 2]),
            statistics: false,
        };
        let done = redact_run(&store, &run, &req).unwrap();
        assert_eq!(done.blobs_removed, 0);
        drop(reader);
        // The freed blobs no other step names (empty detail tables are shared by others).
        let freed: Vec<String> = (store.read(db::pending_removals).unwrap().into_iter())
            .filter(|id| !store.read(|c| db::blob_in_use(c, id)).unwrap())
            .collect();
        assert!(freed.len() >= 2, "{freed:?}");
        let shared = freed[0].clone();
        // A step being stored names that blob (the update below stands for its commit).
        let storing = store.blob_use.read().unwrap();
        std::thread::scope(|s| {
            let removal = s.spawn(|| store.remove_freed_blobs().unwrap());
            std::thread::sleep(std::time::Duration::from_millis(200));
            assert!(!removal.is_finished(), "the removal waits for the step");
            store
                .write(|c| {
                    c.execute(
                        "UPDATE steps SET added_blob = ?1 WHERE run_id = ?2 AND idx = 2",
                        [&shared, &run],
                    )
                })
                .unwrap();
            drop(storing);
            let (removed, _, left) = removal.join().unwrap();
            assert_eq!((removed, left), (freed.len() as u64 - 1, 0));
        });
        assert!(store.blobs.path(&shared).exists(), "named again: kept");
        assert!(freed[1..].iter().all(|id| !store.blobs.path(id).exists()));
        assert!(store.read(db::pending_removals).unwrap().is_empty());
    }
}
