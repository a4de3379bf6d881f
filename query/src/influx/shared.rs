//! Answers shared by identical statements for a moment.
//!
//! A chart that a thousand spectators have open asks the same thing a thousand times a
//! second; InfluxDB should answer it once. Reads whose statement text is the same within the
//! time to live (`--read-cache-ttl`, a second by default) share one answer: the first starts
//! the read, the others wait for it. Callers make their statements equal by rounding the
//! time range outwards to whole seconds and dropping the rows outside the range they were
//! asked for, so an answer is at most that time to live old and otherwise exact. Failed reads
//! are not kept: the next caller tries again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// Entries at which expired ones are swept out on the next insert.
const SWEEP_AT: usize = 256;

/// One statement's answer, being read or read.
struct Slot<T> {
    born: Instant,
    answer: OnceCell<Arc<T>>,
    /// The answer of the slot this one replaced, for [`Shared::get_or_stale`].
    stale: Option<Arc<T>>,
    /// Whether a caller has started the read.
    reading: AtomicBool,
}

/// Statement text → its answer, for `ttl`.
pub struct Shared<T> {
    ttl: Duration,
    slots: Mutex<HashMap<String, Arc<Slot<T>>>>,
}

impl<T> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl<T> Shared<T> {
    /// Answers kept for `ttl` (zero: never shared).
    pub fn new(ttl: Duration) -> Shared<T> {
        Shared { ttl, slots: Mutex::default() }
    }

    /// The answer to `key`: the one read within the time to live, or the one `read` gives
    /// (which later callers then share). Also says whether it was shared.
    ///
    /// # Errors
    /// What `read` returns; it is not kept.
    pub async fn get<E, F>(&self, key: &str, read: impl FnOnce() -> F) -> Result<(Arc<T>, bool), E>
    where
        F: Future<Output = Result<T, E>>,
    {
        if self.ttl.is_zero() {
            return read().await.map(|answer| (Arc::new(answer), false));
        }
        Self::read_into(&self.slot(key), read).await
    }

    /// Like [`Shared::get`], but once a key has had an answer, callers never wait for the
    /// next one: while the first caller after the time to live reads again, the others get
    /// the previous answer (at most the time to live and one read old).
    ///
    /// # Errors
    /// What `read` returns; it is not kept.
    pub async fn get_or_stale<E, F>(&self, key: &str, read: impl FnOnce() -> F) -> Result<(Arc<T>, bool), E>
    where
        F: Future<Output = Result<T, E>>,
    {
        if self.ttl.is_zero() {
            return read().await.map(|answer| (Arc::new(answer), false));
        }
        let slot = self.slot(key);
        if let Some(answer) = slot.answer.get() {
            return Ok((answer.clone(), true));
        }
        if slot.reading.swap(true, Ordering::AcqRel) {
            if let Some(stale) = &slot.stale {
                return Ok((stale.clone(), true));
            }
        }
        Self::read_into(&slot, read).await
    }

    /// The live slot of `key`, a new one (remembering the expired one's answer) when it has
    /// none within the time to live.
    fn slot(&self, key: &str) -> Arc<Slot<T>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        match slots.get(key) {
            Some(slot) if slot.born.elapsed() < self.ttl => slot.clone(),
            expired => {
                let stale = expired.and_then(|s| s.answer.get().or(s.stale.as_ref()).cloned());
                if slots.len() >= SWEEP_AT {
                    slots.retain(|_, slot| slot.born.elapsed() < self.ttl);
                }
                let slot = Arc::new(Slot {
                    born: Instant::now(),
                    answer: OnceCell::new(),
                    stale,
                    reading: AtomicBool::new(false),
                });
                slots.insert(key.to_owned(), slot.clone());
                slot
            }
        }
    }

    async fn read_into<E, F>(slot: &Slot<T>, read: impl FnOnce() -> F) -> Result<(Arc<T>, bool), E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let mut fresh = false;
        let answer = slot
            .answer
            .get_or_try_init(|| {
                fresh = true;
                async { read().await.map(Arc::new) }
            })
            .await?;
        Ok((answer.clone(), !fresh))
    }
}

/// `[from, to)` rounded outwards to whole seconds (nanoseconds), so that requests made
/// within the same second ask InfluxDB the same thing.
pub fn widen(from: i64, to: i64) -> (i64, i64) {
    const SECOND: i64 = 1_000_000_000;
    (from.div_euclid(SECOND) * SECOND, (to + SECOND - 1).div_euclid(SECOND) * SECOND)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_read_and_it_expires() {
        let shared = Arc::new(Shared::<usize>::new(Duration::from_millis(200)));
        let reads = Arc::new(AtomicUsize::new(0));
        let ask = |shared: Arc<Shared<usize>>, reads: Arc<AtomicUsize>| async move {
            shared
                .get("q", || async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok::<_, ()>(reads.fetch_add(1, Ordering::SeqCst))
                })
                .await
                .expect("read")
        };
        let answers = futures::future::join_all((0..50).map(|_| ask(shared.clone(), reads.clone()))).await;
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for fifty callers");
        assert!(answers.iter().all(|(a, _)| **a == 0));
        assert_eq!(answers.iter().filter(|(_, shared)| !shared).count(), 1, "one caller read");
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (again, was_shared) = ask(shared.clone(), reads.clone()).await;
        assert_eq!((*again, was_shared), (1, false), "read again once expired");
    }

    #[tokio::test]
    async fn after_the_first_answer_callers_get_the_previous_one_while_it_is_read_again() {
        let shared = Arc::new(Shared::<usize>::new(Duration::from_secs(1)));
        let (first, _) = shared.get_or_stale("q", || async { Ok::<_, ()>(0) }).await.expect("read");
        assert_eq!(*first, 0);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        // The first caller after expiry reads, and its read waits until told to end; one who
        // comes meanwhile does not wait for it.
        let release = Arc::new(tokio::sync::Notify::new());
        let slow = tokio::spawn({
            let (shared, release) = (shared.clone(), release.clone());
            async move {
                let read = || async move {
                    release.notified().await;
                    Ok::<_, ()>(1)
                };
                *shared.get_or_stale("q", read).await.expect("read").0
            }
        });
        while !shared.slot("q").reading.load(Ordering::Acquire) {
            tokio::task::yield_now().await;
        }
        let (meanwhile, was_shared) =
            shared.get_or_stale("q", || async { Ok::<_, ()>(2) }).await.expect("read");
        assert_eq!((*meanwhile, was_shared), (0, true), "the previous answer, at once");
        release.notify_one();
        assert_eq!(slow.await.expect("the slow read"), 1);
        assert_eq!(*shared.get_or_stale("q", || async { Ok::<_, ()>(3) }).await.expect("read").0, 1);
    }

    #[tokio::test]
    async fn failures_are_not_kept_and_zero_ttl_never_shares() {
        let shared = Shared::<u8>::new(Duration::from_secs(60));
        assert!(shared.get("q", || async { Err::<u8, _>("down") }).await.is_err());
        let (answer, was_shared) = shared.get("q", || async { Ok::<_, &str>(7) }).await.expect("read");
        assert_eq!((*answer, was_shared), (7, false));
        assert_eq!(*shared.get("q", || async { Ok::<_, &str>(8) }).await.expect("read").0, 7);
        let never = Shared::<u8>::new(Duration::ZERO);
        assert_eq!(*never.get("q", || async { Ok::<_, &str>(1) }).await.expect("read").0, 1);
        assert_eq!(*never.get("q", || async { Ok::<_, &str>(2) }).await.expect("read").0, 2);
    }

    #[test]
    fn ranges_widen_to_whole_seconds() {
        assert_eq!(widen(1_500_000_000, 2_000_000_001), (1_000_000_000, 3_000_000_000));
        assert_eq!(widen(2_000_000_000, 3_000_000_000), (2_000_000_000, 3_000_000_000));
        assert_eq!(widen(-1, 1), (-1_000_000_000, 1_000_000_000));
    }
}
