//! Counter-based randomness: every random draw of a run (mask sampling, crops, shuffling)
//! comes from a generator keyed by (seed, stream, epoch, step, rank, ...), never from hidden
//! mutable state, so a resumed run repeats exactly what an uninterrupted run would have done
//! and results do not depend on the number of loader threads (conventions §8).
//!
//! The generator is xoshiro256++ seeded through SplitMix64 from the key words.

/// What a generator is used for; part of the key so streams never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// Multi-block mask sampling (key: epoch, step, rank).
    Mask = 1,
    /// Per-image crop parameters (key: epoch, sample index).
    Crop = 2,
    /// Epoch permutation of the dataset (key: epoch).
    Shuffle = 3,
    /// Weight initialisation (key: rank 0).
    Init = 4,
    /// Dataset subset selection.
    Subset = 5,
    /// Per-image stochastic-depth draws of a recipe's network (DINO's student; key: epoch,
    /// dataset index, view).
    DropPath = 6,
}

/// xoshiro256++ generator.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator determined by the key words (any length; order matters).
    pub fn from_key(key: &[u64]) -> Self {
        let mut h: u64 = 0x6A09_E667_F3BC_C909;
        for &k in key {
            let mut st = h ^ k;
            h = splitmix64(&mut st) ^ h.rotate_left(23);
        }
        let mut st = h;
        let s = [splitmix64(&mut st), splitmix64(&mut st), splitmix64(&mut st), splitmix64(&mut st)];
        Self { s }
    }

    /// The generator of `stream` for the run seeded by `seed`, keyed by `parts`.
    pub fn derive(seed: u64, stream: Stream, parts: &[u64]) -> Self {
        let mut key = Vec::with_capacity(parts.len() + 2);
        key.push(seed);
        key.push(stream as u64);
        key.extend_from_slice(parts);
        Self::from_key(&key)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
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

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform_range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.uniform() * (hi - lo)
    }

    /// Uniform integer in [0, n); n must be > 0 (Lemire's unbiased method).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = (self.next_u64() as u128) * (n as u128);
        if (m as u64) < n {
            let t = n.wrapping_neg() % n;
            while (m as u64) < t {
                m = (self.next_u64() as u128) * (n as u128);
            }
        }
        (m >> 64) as u64
    }

    /// Uniform integer in [lo, hi) (torch.randint's convention); requires lo < hi.
    pub fn randint(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }

    /// A uniformly random permutation of 0..n (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_stream_different_key_different_stream() {
        let a: Vec<u64> = (0..4).map(|_| 0).scan(Rng::derive(1, Stream::Mask, &[0, 5, 0]), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..4).map(|_| 0).scan(Rng::derive(1, Stream::Mask, &[0, 5, 0]), |r, _| Some(r.next_u64())).collect();
        let c: Vec<u64> = (0..4).map(|_| 0).scan(Rng::derive(1, Stream::Mask, &[0, 6, 0]), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut r = Rng::from_key(&[42]);
        let mut counts = [0usize; 7];
        for _ in 0..70_000 {
            counts[r.below(7) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        let mut r = Rng::from_key(&[43]);
        let mean: f64 = (0..100_000).map(|_| r.uniform()).sum::<f64>() / 100_000.0;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = Rng::from_key(&[7]).permutation(1000);
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
        p.sort();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }
}
