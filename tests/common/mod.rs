//! Helpers shared by the Rust integration tests (`mod common;`). Each test binary uses some of
//! them, hence the allowance.
#![allow(dead_code)]

/// Waits for `f` to hold. Synchronises on observable state, not on time: spins (yielding)
/// until it holds, and panics after 10 million tries.
pub fn wait_until(mut f: impl FnMut() -> bool) {
    for _ in 0..10_000_000 {
        if f() {
            return;
        }
        std::thread::yield_now();
    }
    panic!("condition never became true");
}

/// A small deterministic generator (xorshift), so a failure reproduces with its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
