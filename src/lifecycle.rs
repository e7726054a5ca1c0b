//! One resource's close protocol: leases, the close bit, drain with a deadline, and who runs
//! the native close.
//!
//! The whole protocol lives in ONE atomic word:
//!
//! ```text
//!   bit 63  CLOSED    no new lease can be taken (set exactly once, by the winning closer)
//!   bit 62  DEFERRED  the closer stopped waiting; the last lease holder runs the native close
//!   0..62   count     leases currently held (in-flight operations and dependency pins)
//! ```
//!
//! * `try_acquire` is a CAS loop that refuses once CLOSED is set, so after CLOSED the count
//!   only ever goes down.
//! * `begin_close` sets CLOSED with `fetch_or`; the caller that saw it clear is the one winner.
//! * The winner either waits for the count to reach zero (graceful, bounded by a deadline) or
//!   not at all (forced), then calls `claim_close`: if the count is zero it runs the native
//!   close itself; otherwise it sets DEFERRED in the same CAS that re-checks the count, and the
//!   release that takes the count from one to zero is told to run it. Either way the native
//!   close runs exactly once and never while a lease is held.
//!
//! The Mutex + Condvar are only the slow path: a closer sleeping until the drain, and callers
//! waiting for the close to finish. They are never touched by an acquire or by a release that
//! is not the last one after close, and a notifier touches them only when someone sleeps: a
//! sleeper counts itself in `waiters` before it checks its condition, a notifier changes the
//! state before it reads `waiters`, both with a SeqCst fence between (so either the notifier
//! sees the sleeper, or the sleeper sees the change). A close nobody waits for then costs no
//! lock and no futex wake.
//!
//! This file depends on nothing but `crate::sync` so that `tests/loom` can include it as is.

use crate::sync::{fence, AtomicU32, AtomicU64, AtomicU8, Condvar, Mutex, MutexGuard, Ordering};
use std::time::Instant;

const CLOSED: u64 = 1 << 63;
const DEFERRED: u64 = 1 << 62;
const COUNT: u64 = DEFERRED - 1;

const DONE_NO: u8 = 0;
const DONE_OK: u8 = 1;
const DONE_FAILED: u8 = 2;

/// Where a resource is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Leases are granted.
    Active,
    /// No new lease is granted; the native close has not finished yet.
    Closing,
    /// The native close ran and succeeded.
    Closed,
    /// The native close ran and reported an error (or panicked).
    Failed,
}

impl State {
    /// Lower-case name used in status documents and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Closing => "closing",
            State::Closed => "closed",
            State::Failed => "failed",
        }
    }
}

/// What the holder of a released lease must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Release {
    /// Nothing.
    Normal,
    /// This was the last lease of a resource whose closer deferred to it: run the native close
    /// now (exactly this caller, exactly once).
    RunClose,
}

/// Who runs the native close, decided by [`Lifecycle::claim_close`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Claim {
    /// Nothing is in flight and nothing can start: the caller runs the native close now.
    RunNow,
    /// Leases are still held: the last one to be released runs the native close.
    Deferred,
}

/// The lease and close state of one resource. See the module documentation.
pub struct Lifecycle {
    word: AtomicU64,
    done: AtomicU8,
    /// Threads between counting themselves in and leaving [`sleep_until`](Self::sleep_until).
    waiters: AtomicU32,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    pub fn new() -> Self {
        Lifecycle {
            word: AtomicU64::new(0),
            done: AtomicU8::new(DONE_NO),
            waiters: AtomicU32::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// Takes a lease unless the resource is closing or closed. Every successful call must be
    /// matched by exactly one [`release`](Self::release).
    #[inline]
    pub fn try_acquire(&self) -> bool {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            if cur & CLOSED != 0 || cur & COUNT == COUNT {
                return false;
            }
            match self.word.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Gives back a lease taken by [`try_acquire`](Self::try_acquire).
    #[inline]
    pub fn release(&self) -> Release {
        let prev = self.word.fetch_sub(1, Ordering::Release);
        debug_assert!(prev & COUNT != 0, "lease released more often than taken");
        if prev & CLOSED == 0 || prev & COUNT != 1 {
            return Release::Normal;
        }
        // Last lease after close: everything done under any lease happens-before what follows.
        fence(Ordering::Acquire);
        if prev & DEFERRED != 0 {
            return Release::RunClose;
        }
        // The closer may be asleep in `wait_drained`.
        self.notify_sleepers();
        Release::Normal
    }

    /// Stops new leases. Returns true for exactly one caller: the one that must carry the close
    /// through ([`wait_drained`](Self::wait_drained), [`claim_close`](Self::claim_close)).
    pub fn begin_close(&self) -> bool {
        self.word.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED == 0
    }

    /// After [`begin_close`](Self::begin_close): waits until no lease is held or the deadline
    /// passes (`None`: no deadline). Returns true when drained.
    pub fn wait_drained(&self, deadline: Option<Instant>) -> bool {
        self.sleep_until(deadline, || self.leases() == 0)
    }

    /// After [`begin_close`](Self::begin_close), called once by the winner: decides who runs
    /// the native close. See [`Claim`].
    pub fn claim_close(&self) -> Claim {
        let mut cur = self.word.load(Ordering::Acquire);
        loop {
            debug_assert!(cur & CLOSED != 0, "claim_close before begin_close");
            if cur & COUNT == 0 {
                return Claim::RunNow;
            }
            match self.word.compare_exchange_weak(
                cur,
                cur | DEFERRED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Claim::Deferred,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Records the outcome of the native close and wakes [`wait_done`](Self::wait_done).
    pub fn finish(&self, ok: bool) {
        let value = if ok { DONE_OK } else { DONE_FAILED };
        self.done.store(value, Ordering::Release);
        self.notify_sleepers();
    }

    /// Waits until the native close has finished or the deadline passes. True when finished.
    pub fn wait_done(&self, deadline: Option<Instant>) -> bool {
        self.sleep_until(deadline, || self.is_done())
    }

    /// Sleeps until `ready()` or the deadline; `ready()`'s last answer. A notifier must change
    /// what `ready` reads before calling [`notify_sleepers`](Self::notify_sleepers).
    fn sleep_until(&self, deadline: Option<Instant>, ready: impl Fn() -> bool) -> bool {
        if ready() {
            return true;
        }
        let mut guard = Some(self.guard());
        self.waiters.fetch_add(1, Ordering::Relaxed);
        // Counted in before the check below: pairs with the fence in `notify_sleepers`.
        fence(Ordering::SeqCst);
        let result = loop {
            if ready() {
                break true;
            }
            let Some(g) = guard.take() else {
                break ready();
            };
            match self.wait(g, deadline) {
                Some(g) => guard = Some(g),
                None => break ready(),
            }
        };
        // Counted out once done checking (a stale count only costs a notifier a wake-up).
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        result
    }

    /// Wakes the threads in [`sleep_until`](Self::sleep_until), if any, after a state change.
    fn notify_sleepers(&self) {
        // The state change happened-before this fence; a sleeper counted in before its own
        // fence is seen below, and one counted in after it sees the change when it checks.
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) == 0 {
            return;
        }
        let _guard = self.guard();
        self.cv.notify_all();
    }

    /// Leases currently held.
    pub fn leases(&self) -> u64 {
        self.word.load(Ordering::Acquire) & COUNT
    }

    /// True once a closer gave the native close to the last lease holder.
    pub fn is_deferred(&self) -> bool {
        self.word.load(Ordering::Acquire) & DEFERRED != 0
    }

    /// True once close has begun (no new lease is granted).
    pub fn is_closing(&self) -> bool {
        self.word.load(Ordering::Acquire) & CLOSED != 0
    }

    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire) != DONE_NO
    }

    pub fn state(&self) -> State {
        if self.word.load(Ordering::Acquire) & CLOSED == 0 {
            return State::Active;
        }
        match self.done.load(Ordering::Acquire) {
            DONE_OK => State::Closed,
            DONE_FAILED => State::Failed,
            _ => State::Closing,
        }
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        // A poisoned lock only means another thread panicked while holding `()`: no state to
        // repair, so carry on rather than spread the panic.
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One wait on the condition variable; `None` when the deadline has passed.
    fn wait<'a>(
        &self,
        guard: MutexGuard<'a, ()>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'a, ()>> {
        match deadline {
            None => Some(self.cv.wait(guard).unwrap_or_else(|e| e.into_inner())),
            #[cfg(not(loom))]
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                let (g, _) = self
                    .cv
                    .wait_timeout(guard, d - now)
                    .unwrap_or_else(|e| e.into_inner());
                Some(g)
            }
            #[cfg(loom)]
            Some(_) => {
                // loom does not model time: a deadline behaves as "already passed".
                drop(guard);
                None
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn leases_are_refused_after_close_begins() {
        let l = Lifecycle::new();
        assert!(l.try_acquire());
        assert_eq!(l.leases(), 1);
        assert!(l.begin_close());
        assert!(!l.try_acquire(), "no lease after close began");
        assert_eq!(l.state(), State::Closing);
        assert_eq!(l.release(), Release::Normal);
        assert_eq!(l.claim_close(), Claim::RunNow);
    }

    #[test]
    fn only_one_closer_wins() {
        let l = Lifecycle::new();
        assert!(l.begin_close());
        assert!(!l.begin_close());
        assert!(!l.begin_close());
    }

    #[test]
    fn close_is_deferred_to_the_last_lease() {
        let l = Lifecycle::new();
        assert!(l.try_acquire());
        assert!(l.try_acquire());
        assert!(l.begin_close());
        assert_eq!(l.claim_close(), Claim::Deferred);
        assert!(l.is_deferred());
        assert_eq!(l.release(), Release::Normal);
        assert_eq!(
            l.release(),
            Release::RunClose,
            "the last lease runs the close"
        );
    }

    #[test]
    fn wait_drained_times_out_while_a_lease_is_held() {
        let l = Lifecycle::new();
        assert!(l.try_acquire());
        assert!(l.begin_close());
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(!l.wait_drained(Some(deadline)));
        assert_eq!(l.claim_close(), Claim::Deferred);
        assert_eq!(l.release(), Release::RunClose);
    }

    #[test]
    fn wait_drained_wakes_when_the_last_lease_ends() {
        let l = Arc::new(Lifecycle::new());
        assert!(l.try_acquire());
        assert!(l.begin_close());
        let l2 = Arc::clone(&l);
        let holder = std::thread::spawn(move || l2.release());
        // No deadline: returns only because the release notified it.
        assert!(l.wait_drained(None));
        assert_eq!(holder.join().unwrap(), Release::Normal);
        assert_eq!(l.claim_close(), Claim::RunNow);
    }

    #[test]
    fn finish_records_the_outcome_and_wakes_waiters() {
        let l = Arc::new(Lifecycle::new());
        assert!(l.begin_close());
        let l2 = Arc::clone(&l);
        let waiter = std::thread::spawn(move || l2.wait_done(None));
        l.finish(false);
        assert!(waiter.join().unwrap());
        assert_eq!(l.state(), State::Failed);
        let ok = Lifecycle::new();
        assert!(ok.begin_close());
        ok.finish(true);
        assert_eq!(ok.state(), State::Closed);
        assert!(ok.wait_done(Some(Instant::now())));
    }

    #[test]
    fn wait_done_times_out() {
        let l = Lifecycle::new();
        assert!(l.begin_close());
        assert!(!l.wait_done(Some(Instant::now() + Duration::from_millis(10))));
    }
}

/// Model checks of the protocol: run with `tests/loom` (`RUSTFLAGS="--cfg loom"`).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;
    use loom::thread;

    /// The "native resource": counts closes and checks nobody uses it after close.
    struct Probe {
        life: Lifecycle,
        in_use: AtomicUsize,
        closes: AtomicUsize,
    }

    impl Probe {
        fn new() -> Arc<Self> {
            Arc::new(Probe {
                life: Lifecycle::new(),
                in_use: AtomicUsize::new(0),
                closes: AtomicUsize::new(0),
            })
        }
        fn native_close(&self) {
            assert_eq!(
                self.in_use.load(Ordering::SeqCst),
                0,
                "closed under a lease"
            );
            assert_eq!(
                self.closes.fetch_add(1, Ordering::SeqCst),
                0,
                "closed twice"
            );
        }
        /// One operation: lease, use, release (running the close if told to).
        fn operate(&self) {
            if self.life.try_acquire() {
                assert_eq!(self.closes.load(Ordering::SeqCst), 0, "used after close");
                self.in_use.fetch_add(1, Ordering::SeqCst);
                self.in_use.fetch_sub(1, Ordering::SeqCst);
                if self.life.release() == Release::RunClose {
                    self.native_close();
                }
            }
        }
        fn close(&self, graceful: bool) {
            if !self.life.begin_close() {
                return;
            }
            if graceful {
                assert!(self.life.wait_drained(None));
            }
            if self.life.claim_close() == Claim::RunNow {
                self.native_close();
            }
        }
    }

    #[test]
    fn forced_close_races_operations() {
        loom::model(|| {
            let p = Probe::new();
            let ops: Vec<_> = (0..2)
                .map(|_| {
                    let p = Arc::clone(&p);
                    thread::spawn(move || p.operate())
                })
                .collect();
            p.close(false);
            for t in ops {
                t.join().unwrap();
            }
            assert_eq!(p.closes.load(Ordering::SeqCst), 1, "close ran exactly once");
        });
    }

    #[test]
    fn graceful_close_waits_for_the_lease() {
        loom::model(|| {
            let p = Probe::new();
            let op = {
                let p = Arc::clone(&p);
                thread::spawn(move || p.operate())
            };
            p.close(true);
            // Graceful: the closer itself ran the close, after the drain.
            assert_eq!(p.closes.load(Ordering::SeqCst), 1);
            op.join().unwrap();
            assert_eq!(p.closes.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn two_closers_one_winner() {
        loom::model(|| {
            let p = Probe::new();
            let other = {
                let p = Arc::clone(&p);
                thread::spawn(move || p.close(false))
            };
            p.close(true);
            other.join().unwrap();
            assert_eq!(p.closes.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn finish_wakes_a_waiter() {
        loom::model(|| {
            let l = Arc::new(Lifecycle::new());
            assert!(l.begin_close());
            let w = {
                let l = Arc::clone(&l);
                thread::spawn(move || assert!(l.wait_done(None)))
            };
            l.finish(true);
            w.join().unwrap();
            assert_eq!(l.state(), State::Closed);
        });
    }
}
