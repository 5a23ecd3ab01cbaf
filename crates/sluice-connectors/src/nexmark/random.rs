//! Per-event randomness: a SplitMix64 generator seeded from the event number, and the value
//! distributions of Beam's `LongGenerator`, `PriceGenerator` and `StringsGenerator`.
//!
//! Invariant: every function here is a pure function of the generator's state, so an event
//! seeded from its number is the same on every subtask and every run. Java's
//! `java.util.Random` streams are not reproduced bit for bit; the distributions are.

/// SplitMix64 (Steele, Lea and Flood): a tiny, fast generator whose output is a strong
/// hash of its counter, so consecutive seeds give unrelated streams.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Keeps event streams apart from the streams of the string tables.
const EVENT_SALT: u64 = 0x6E65_786D_6172_6B21;

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The generator of event `n` (Beam seeds `new Random(eventId)` the same way).
    pub(crate) fn for_event(n: u64) -> Self {
        SplitMix64::new(mix64(n ^ EVENT_SALT))
    }

    /// 64 uniform bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// Uniform in `0..bound` (Lemire's multiply-high; the bias, below `bound / 2^64`, is
    /// negligible). Java's `nextInt(bound)` / `LongGenerator.nextLong(bound)`; `bound` must
    /// be positive.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0, "a random bound must be positive");
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `[0, 1)` with 53 bits, like Java's `nextDouble`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// `PriceGenerator.nextPrice`: cents, log-uniform between $1 and $1 000 000.
pub(crate) fn price(rng: &mut SplitMix64) -> i64 {
    // 10^(6u) as 2^(6u log2 10): exp2 is about twice as fast as powf.
    ((rng.next_f64() * 6.0 * std::f64::consts::LOG2_10).exp2() * 100.0).round() as i64
}

/// Shortest string of [`push_string`].
const MIN_STRING_LENGTH: u64 = 3;
/// Longest `max_length` [`push_string`] supports.
const MAX_STRING_LENGTH: usize = 128;

/// `StringsGenerator.nextString(random, maxLength, special)`: `3..maxLength` characters,
/// each `special` with probability 1/13 and otherwise a uniform lowercase letter, with
/// leading and trailing spaces trimmed; appended to `out`.
pub(crate) fn push_string(rng: &mut SplitMix64, max_length: u64, special: u8, out: &mut String) {
    debug_assert!(
        (MIN_STRING_LENGTH + 1..=MAX_STRING_LENGTH as u64).contains(&max_length),
        "string lengths are small constants"
    );
    let len = (MIN_STRING_LENGTH + rng.below(max_length - MIN_STRING_LENGTH)) as usize;
    let mut buf = [0u8; MAX_STRING_LENGTH];
    // One draw among 13 * 26 outcomes picks "special" (26 of them) or a letter; seven such
    // digits fit in 64 bits.
    let (mut word, mut left) = (0u64, 0);
    for slot in &mut buf[..len] {
        if left == 0 {
            word = rng.next_u64();
            left = 7;
        }
        let digit = word % 338;
        word /= 338;
        left -= 1;
        *slot = if digit < 26 {
            special
        } else {
            b'a' + (digit % 26) as u8
        };
    }
    let mut text = &buf[..len];
    if special == b' ' {
        while let [b' ', rest @ ..] = text {
            text = rest;
        }
        while let [rest @ .., b' '] = text {
            text = rest;
        }
    }
    push_ascii(text, out);
}

/// `StringsGenerator.nextString` as a new string.
pub(crate) fn string(rng: &mut SplitMix64, max_length: u64, special: u8) -> String {
    let mut out = String::with_capacity(max_length as usize);
    push_string(rng, max_length, special, &mut out);
    out
}

/// `StringsGenerator.nextExactString`: `len` uniform lowercase letters appended to `out`.
pub(crate) fn push_letters(rng: &mut SplitMix64, len: usize, out: &mut String) {
    // Letters are made in a stack buffer and appended a chunk at a time: pushing chars
    // one by one costs twice as much.
    let mut buf = [0u8; 96];
    out.reserve(len);
    let mut remaining = len;
    while remaining > 0 {
        let chunk = remaining.min(buf.len());
        for group in buf[..chunk].chunks_mut(12) {
            // The base-676 digits of a uniform fraction, two letters each: every
            // multiplication by 676 moves the next digit into the high word; six digits
            // use 57 of the 64 bits.
            let mut word = rng.next_u64();
            for pair in group.chunks_mut(2) {
                let wide = u128::from(word) * 676;
                let digit = (wide >> 64) as u16;
                word = wide as u64;
                pair[0] = b'a' + (digit / 26) as u8;
                if let Some(second) = pair.get_mut(1) {
                    *second = b'a' + (digit % 26) as u8;
                }
            }
        }
        push_ascii(&buf[..chunk], out);
        remaining -= chunk;
    }
}

/// Appends ASCII bytes (always valid UTF-8; anything else would be a bug and is skipped).
fn push_ascii(bytes: &[u8], out: &mut String) {
    debug_assert!(bytes.is_ascii(), "generated text is ASCII");
    if let Ok(text) = std::str::from_utf8(bytes) {
        out.push_str(text);
    }
}

/// The length of `StringsGenerator.nextExtra(random, currentSize, desiredAverageSize)`: a
/// padding that brings a record of `current_size` bytes to `desired_average` on average,
/// uniform within ±20 %.
pub(crate) fn extra_len(
    rng: &mut SplitMix64,
    current_size: usize,
    desired_average: usize,
) -> usize {
    if current_size > desired_average {
        return 0;
    }
    let desired = desired_average - current_size;
    // Java's Math.round(desired * 0.2); desired / 5 never ends in .5, so this is exact.
    let delta = (desired + 2) / 5;
    let min = desired - delta;
    if delta == 0 {
        min
    } else {
        min + rng.below(2 * delta as u64) as usize
    }
}

/// `StringsGenerator.nextExtra`, appended to `out`.
pub(crate) fn push_extra(
    rng: &mut SplitMix64,
    current_size: usize,
    desired_average: usize,
    out: &mut String,
) {
    let len = extra_len(rng, current_size, desired_average);
    push_letters(rng, len, out);
}

/// `StringsGenerator.nextExtra` as a new string.
pub(crate) fn extra(rng: &mut SplitMix64, current_size: usize, desired_average: usize) -> String {
    let mut out = String::new();
    push_extra(rng, current_size, desired_average, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u64> = {
            let mut r = SplitMix64::for_event(7);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let mut r = SplitMix64::for_event(7);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        assert_ne!(a[0], SplitMix64::for_event(8).next_u64());
    }

    #[test]
    fn below_is_uniform_enough() {
        let mut r = SplitMix64::new(1);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[r.below(10) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn strings_have_beams_lengths_and_alphabet() {
        let mut r = SplitMix64::new(2);
        let mut specials = 0usize;
        let mut chars = 0usize;
        for _ in 0..10_000 {
            let s = string(&mut r, 20, b'_');
            assert!((3..20).contains(&s.len()), "{s:?}");
            assert!(s.bytes().all(|b| b == b'_' || b.is_ascii_lowercase()));
            specials += s.bytes().filter(|&b| b == b'_').count();
            chars += s.len();
            let t = string(&mut r, 5, b' ');
            assert!(
                t.len() < 5 && !t.starts_with(' ') && !t.ends_with(' '),
                "{t:?}"
            );
        }
        let share = specials as f64 / chars as f64;
        assert!((share - 1.0 / 13.0).abs() < 0.01, "{share}");
    }

    #[test]
    fn extra_pads_to_the_average_within_twenty_percent() {
        let mut r = SplitMix64::new(3);
        let n = 10_000;
        let total: usize = (0..n).map(|_| extra(&mut r, 32, 100).len()).sum();
        let mean = total as f64 / n as f64;
        // 68 wanted: delta = 14, lengths uniform in 54..82, mean 67.5.
        assert!((mean - 67.5).abs() < 0.5, "{mean}");
        assert_eq!(extra(&mut r, 101, 100), "");
        assert_eq!(extra_len(&mut r, 98, 100), 2);
    }

    #[test]
    fn prices_are_log_uniform_in_cents() {
        let mut r = SplitMix64::new(4);
        let prices: Vec<i64> = (0..10_000).map(|_| price(&mut r)).collect();
        assert!(prices.iter().all(|p| (100..=100_000_000).contains(p)));
        let below_1000_dollars = prices.iter().filter(|&&p| p < 100_000).count();
        // log10(1000) / 6 = half of the prices.
        assert!(
            (4_700..5_300).contains(&below_1000_dollars),
            "{below_1000_dollars}"
        );
    }
}
