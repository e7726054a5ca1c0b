//! Call-sequence property test of the C ABI (issue 7, item 1).
//!
//! Random sequences of `rm_*` calls, made as a C caller makes them (raw pointers, `rm_error`
//! out-parameters, NULL where the header allows it, a C close callback with a `void *`
//! context), each checked against a model of what `include/resman.h` documents:
//!
//! * lifecycle: `rm_register` (close callbacks that succeed, fail once, or always fail; the
//!   callbacks count their calls with atomics, since they run on resman's pool threads),
//!   `rm_add_dependency`, `rm_unregister`, `rm_close`, `rm_close_timeout` (graceful with 0 or
//!   10 s, forced), `rm_cleanup`, `rm_cleanup_timeout` (same variants), `rm_manager_destroy`
//!   of a second manager mid-sequence and of both at the end;
//! * RocksDB: `rm_db_open` (two temp directories, column families "default", "a", "b";
//!   a few percent of the steps, with 1 MiB memtables from `rm_db_options_default`),
//!   `rm_put`, `rm_get`, `rm_delete`, `rm_snapshot_create`, `rm_iter_create` (optionally at
//!   a snapshot), `rm_iter_seek_to_first`, `rm_iter_next`, `rm_iter_key`, `rm_iter_value`,
//!   `rm_batch_create`, `rm_batch_put`, `rm_batch_write` (flags 0, SYNC, DISABLE_WAL, and
//!   both: invalid);
//! * introspection: `rm_status` (NULL buffer, too small, exactly the reported length, large:
//!   the documented retry protocol, then the JSON's resources, leases and totals against the
//!   model), `rm_manager_metrics`, and `rm_live_objects` after every step.
//!
//! Handles are drawn from: live handles of every kind (foreign, monitor, DB, column family,
//! iterator, snapshot, batch), closed handles, handles whose slot was reused (a "churn" step,
//! in about a third of the cases, registers and unregisters 1100 to 1300 resources, past the
//! 1024-slot quarantine), handles of the wrong kind (a column family where a DB or iterator
//! goes, a manager handle where a resource goes, a resource handle where a manager goes),
//! the other manager's handles (live and destroyed), 0, `u64::MAX` and random numbers that
//! were never issued.
//!
//! The model predicts every result code (a set where the header allows several, e.g. a
//! closed handle of the wrong kind), the values read back (a get after a put, a deleted key
//! is `RM_ERR_NOT_FOUND`, a batch write makes all its puts visible, an iterator sees the data
//! as of its creation or of its snapshot, too-small buffers get the needed length and are
//! not written), what a close or cleanup closes (dependents included) and whether it
//! succeeds, the exact number of close-callback calls (`1 + max_retries` for one that always
//! fails; none after `rm_unregister` or a refused registration; never two at once), that a
//! dependent's callback finishes before its dependency's starts, that a close or cleanup with
//! nothing in flight does not run out its graceful phase, the manager counters, and that
//! `rm_live_objects` is back to its starting value once the managers are destroyed.
//! "Closed" versus "stale" is decided by observation: a closed handle is stale once a handle
//! with the same slot index (bits 15..35, see `src/handle.rs`) has been issued since.
//!
//! proptest-state-machine drives it: a failure shrinks to a short sequence, printed by
//! proptest as `(initial_state, transitions, ..)` (ids: 0 and 1 are the monitors, 2 and 3
//! the second manager's resources, then handles in the order they were issued). A failure
//! whose call waits out the 10 s graceful phase shrinks slowly: shrinking stops after 30 s
//! (`PROPTEST_MAX_SHRINK_TIME` to change). Minimal failing sequences found so far are kept
//! in `regressions()` and replayed after the random cases. At the end the test prints the
//! number of C ABI calls, and per function the steps, time and result codes seen; it
//! requires at least 100,000 calls outside the churn steps.
//!
//! This must stay the only test of its binary: `rm_live_objects` counts the whole process.
//! Cases run sequentially.
//!
//! Environment:
//! * `RESMAN_CALLS_CASES=N` multiplies the number of cases (448) by N, for stress runs;
//! * `RESMAN_CALLS_TMPDIR=dir` puts the DB directories there (default `/dev/shm` when it
//!   exists, else the system temp dir);
//! * proptest's own variables apply too (`PROPTEST_RNG_SEED` to replay a seed,
//!   `PROPTEST_CASES` replaces the number of cases).

#[path = "calls/harness.rs"]
mod harness;

use harness::*;
use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use std::sync::atomic::Ordering::SeqCst;
use std::time::Instant;

// ---------------------------------------------------------------------------------------
// The test

struct Calls;

impl ReferenceStateMachine for Calls {
    type State = Model;
    type Transition = T;

    fn init_state() -> BoxedStrategy<Model> {
        (0u32..=1).prop_map(Model::new).boxed()
    }

    fn transitions(s: &Model) -> BoxedStrategy<T> {
        transitions(s)
    }

    fn apply(mut s: Model, t: &T) -> Model {
        s.advance(t);
        s
    }

    fn preconditions(s: &Model, t: &T) -> bool {
        s.valid(t)
    }
}

impl StateMachineTest for Calls {
    type SystemUnderTest = Sut;
    type Reference = Calls;

    fn init_test(r: &Model) -> Sut {
        timed("(case set-up)", || Sut::new(r))
    }

    fn apply(mut sut: Sut, r: &Model, t: T) -> Sut {
        timed(t.name(), || sut.apply(r, &t));
        sut
    }

    fn check_invariants(sut: &Sut, r: &Model) {
        sut.invariants(r);
    }

    fn teardown(sut: Sut, r: Model) {
        timed("(case teardown)", || sut.teardown(r));
    }
}

fn config() -> Config {
    let factor: u32 = std::env::var("RESMAN_CALLS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    Config {
        cases: BASE_CASES.saturating_mul(factor),
        // Nothing written next to the sources; the failing sequence is printed.
        failure_persistence: None,
        max_shrink_iters: 4096,
        // Shrinking a failure that waits out a graceful phase costs 10 s per try.
        max_shrink_time: 30_000,
        ..Config::default()
    }
}

prop_state_machine! {
    #![proptest_config(config())]
    fn call_sequences(sequential 1..=MAX_STEPS => Calls);
}

/// Minimal failing sequences this test found, replayed as they are after the random cases
/// (each starts from `Model::new(max_retries)`: ids 0 and 1 are the monitors, 2 and 3 the
/// other manager's resources, then handles in the order they are issued).
fn regressions() -> Vec<(&'static str, u32, Vec<T>)> {
    vec![(
        // A column family made to depend on a resource that depends on another dependent of
        // the same DB: the scheduler's "a column family closes after the DB's other
        // dependents" edge closes a cycle (cf a -> r0 -> batch -> cf a), so a graceful
        // rm_cleanup with nothing in flight waits out cleanup_timeout_ms, then forces
        // (escalations 1, forced 4, the DB closed without its flush).
        "a column family depending on a dependent of another dependent of its DB",
        0,
        vec![
            T::DbOpen {
                m: MRef::Main,
                path: 0,
                alias: false,
                cfs: vec![1],
            },
            T::BatchCreate { db: HRef::Id(4) },
            T::Register {
                m: MRef::Main,
                name: 0,
                behavior: Behavior::Ok,
                deps: vec![HRef::Id(6)],
            },
            T::AddDep {
                m: MRef::Main,
                dependent: HRef::Id(5),
                dependency: HRef::Id(7),
            },
            T::Cleanup {
                m: MRef::Main,
                how: CloseHow::Plain,
            },
            T::Metrics { m: MRef::Main },
        ],
    )]
}

#[test]
fn c_abi_call_sequences_match_the_model() {
    let started = Instant::now();
    // The statistics are printed even when a case fails.
    let outcome = std::panic::catch_unwind(call_sequences);
    print_stats("calls.rs", started);
    let calls = CALLS.load(SeqCst);
    let churn = CHURN_CALLS.load(SeqCst);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(
        calls - churn >= MIN_CALLS,
        "only {} C ABI calls besides the churn steps; raise BASE_CASES",
        calls - churn
    );
    for (name, max_retries, transitions) in regressions() {
        eprintln!("calls.rs: replaying \"{name}\"");
        Calls::test_sequential(
            Config::default(),
            Model::new(max_retries),
            transitions,
            None,
        );
    }
}
