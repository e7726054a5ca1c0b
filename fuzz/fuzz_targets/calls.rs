//! libFuzzer target over the C ABI: the call-sequence model of `tests/calls.rs`, driven by
//! the fuzzer's bytes instead of a random generator.
//!
//! The input is one byte, then 4-byte chunks: the byte's low bit is `max_retries` (0 or 1),
//! and each chunk seeds the random generator from which the property test's strategies draw
//! one step: which call, which handle (live, closed, reused slot, wrong kind, another
//! manager's, 0, `u64::MAX`, never issued), which keys, buffers and flags. Each call is
//! checked against the model exactly as in the property test (result codes, values read
//! back, close-callback counts and order, counters, status JSON), and the case ends with both
//! managers destroyed and `rm_live_objects` back at its start. A mismatch panics: libFuzzer
//! saves the input as a crash artifact; `cargo fuzz run calls <artifact>` replays it.

#![no_main]

#[allow(dead_code)]
#[path = "../../tests/calls/harness.rs"]
mod harness;

use harness::{transitions, Model, Sut, CALLS};
use libfuzzer_sys::fuzz_target;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Steps of one input: at most this many chunks are read.
const MAX_STEPS: usize = 128;
/// Bytes per step. Each step is seeded from its own chunk rather than read from one byte
/// stream: libFuzzer's mutations that insert, erase, copy or change bytes then insert, erase,
/// repeat or change steps and leave the rest of the sequence as it was, and no strategy can
/// run out of bytes (proptest's byte-reading `PassThrough` generator yields zeros past the
/// end of its input, on which rejection sampling spins for ever).
const CHUNK: usize = 4;

/// Inputs run; at every power of two the totals are printed (`tests/fuzz.sh` reports the
/// last line).
static INPUTS: AtomicU64 = AtomicU64::new(0);

/// A runner whose random generator is seeded from `chunk` (at most 32 bytes).
fn runner(chunk: &[u8]) -> TestRunner {
    let mut seed = [0u8; 32];
    seed[..chunk.len()].copy_from_slice(chunk);
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, steps)) = data.split_first() else {
        return;
    };
    let mut model = Model::new(u32::from(first & 1));
    let mut sut = Sut::new(&model);
    for chunk in steps.chunks(CHUNK).take(MAX_STEPS) {
        let t = match transitions(&model).new_tree(&mut runner(chunk)) {
            Ok(tree) => tree.current(),
            Err(_) => break,
        };
        if !model.valid(&t) {
            continue;
        }
        model.advance(&t);
        sut.apply(&model, &t);
        sut.invariants(&model);
    }
    sut.teardown(model);
    let n = INPUTS.fetch_add(1, Relaxed) + 1;
    if n.is_power_of_two() {
        eprintln!(
            "fuzz calls: {n} inputs, {} C ABI calls",
            CALLS.load(Relaxed)
        );
    }
});
