//! The worker's background loops: claiming due runs and renewing leases.

use std::sync::Arc;
use std::time::Duration;

use super::Inner;
use crate::time::Timestamp;

/// Claims at most this many runs per store round trip.
const CLAIM_BATCH: usize = 256;

/// Claims due runs (new, woken, or abandoned by a dead worker) while this
/// engine has room, and sleeps until the next one is due.
pub(crate) async fn run(engine: Arc<Inner>) {
    let mut failures = 0u32;
    loop {
        if engine.shutdown.is_cancelled() {
            return;
        }
        let mut full_batch = false;
        let free = engine.free_permits().min(CLAIM_BATCH);
        let claimed_at = Timestamp::now();
        let workflows = engine.claimable_workflows();
        if free > 0 {
            match engine
                .store
                .claim_due(&engine.lease(), claimed_at, free, workflows.as_deref())
                .await
            {
                Ok(records) => {
                    failures = 0;
                    full_batch = records.len() == free;
                    for record in records {
                        if engine.is_live(record.id) {
                            // Our own run whose lease had lapsed: we hold it again.
                            continue;
                        }
                        match engine.try_permit() {
                            Some(permit) => engine.resume(record, permit),
                            None => {
                                let _ = engine.store.release(record.id, &engine.worker, None).await;
                            }
                        }
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "could not claim due runs");
                }
            }
        }
        if full_batch && engine.free_permits() > 0 {
            continue;
        }
        let mut wait = engine.config.poll_interval;
        if failures > 0 {
            wait = wait.saturating_mul(failures.min(10));
        } else if free > 0
            && let Ok(Some(next)) = engine.store.next_due().await
        {
            // A run already due that the claim did not return belongs to a
            // workflow this engine leaves to others, or another worker won
            // it: wait the poll interval rather than spin on it. With no
            // free slot, a finishing run wakes this loop.
            if next > claimed_at {
                wait = wait.min(Timestamp::now().until(next));
            }
        }
        tokio::select! {
            () = engine.shutdown.cancelled() => return,
            () = engine.wake_scheduler.notified() => {}
            () = tokio::time::sleep(wait.max(Duration::from_millis(1))) => {}
        }
    }
}

/// Renews this worker's leases a few times per lease period, and cancels the
/// runs whose cancellation was requested elsewhere.
pub(crate) async fn renew_leases(engine: Arc<Inner>) {
    let period = engine.config.lease / 3;
    loop {
        tokio::select! {
            () = engine.shutdown.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        let live = engine.live_runs();
        if live.is_empty() {
            continue;
        }
        match engine.store.renew_leases(&engine.lease(), &live).await {
            Ok(renewal) => {
                for id in renewal.cancel_requested {
                    if let Some(live) = engine.live(id) {
                        live.cancel.cancel();
                    }
                }
                for id in renewal.lost {
                    if let Some(live) = engine.live(id) {
                        live.abandon.cancel();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not renew leases"),
        }
    }
}
