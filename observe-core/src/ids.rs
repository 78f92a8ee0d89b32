//! Trace and span id generation: a per-thread xoshiro256++ generator seeded
//! from the standard library's randomly keyed hasher. No lock, no syscall per id.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Where ids come from: random (the default) or a fixed seed for reproducible tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub, dead_code))]
pub enum IdSource {
    /// Random ids (W3C Level 2 `random` flag is set on traces started here).
    #[default]
    Random,
    /// Deterministic ids from a seed, for golden tests. Each `Telemetry` gets
    /// its own sequence.
    Seeded(u64),
}

/// SplitMix64's output function: a 64-bit value mixed so that every input
/// bit affects every output bit (also what log sampling draws from a trace id).
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: the next value of the sequence `state` is at (seeds xoshiro).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mix64(*state)
}

/// xoshiro256++ state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rng([u64; 4]);

impl Rng {
    pub(crate) fn from_seed(seed: u64) -> Self {
        let mut s = seed;
        Rng([
            splitmix64(&mut s),
            splitmix64(&mut s),
            splitmix64(&mut s),
            splitmix64(&mut s),
        ])
    }

    fn from_entropy() -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        let a = h.finish();
        let mut h = RandomState::new().build_hasher();
        h.write_u64(a);
        Self::from_seed(a ^ h.finish().rotate_left(32))
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

thread_local! {
    static RNG: Cell<Option<Rng>> = const { Cell::new(None) };
}

/// A random non-zero `u64` from the thread's generator.
#[inline]
pub(crate) fn random_u64() -> u64 {
    let [v] = random_u64s();
    v
}

/// `N` random non-zero `u64`s from the thread's generator (one access).
#[inline]
pub(crate) fn random_u64s<const N: usize>() -> [u64; N] {
    RNG.with(|cell| {
        let mut rng = cell.get().unwrap_or_else(Rng::from_entropy);
        let out = std::array::from_fn(|_| loop {
            let v = rng.next_u64();
            if v != 0 {
                break v;
            }
        });
        cell.set(Some(rng));
        out
    })
}

/// 32 random bytes, for a per-process pseudonym key.
pub(crate) fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    let mut rng = Rng::from_entropy();
    for chunk in key.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_deterministic_and_random_is_not_zero() {
        let mut a = Rng::from_seed(7);
        let mut b = Rng::from_seed(7);
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(random_u64(), 0);
        assert_ne!(random_u64(), random_u64());
        assert_ne!(random_key(), random_key());
    }
}
