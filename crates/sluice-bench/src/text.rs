//! Generates benchmark text: lines of words drawn from a Zipf distribution (s = 1), as
//! natural-language word frequencies are. Deterministic: the same arguments give the same
//! file.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;

/// SplitMix64: a small, fast, deterministic generator (no dependency needed).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn make_word(rank: usize, rng: &mut SplitMix64) -> String {
    // Frequent words are short, as in real text.
    let len = 2 + (rank as f64).log2().max(0.0) as usize / 2 + (rng.next_u64() % 3) as usize;
    let mut word = String::with_capacity(len + 8);
    for _ in 0..len {
        word.push((b'a' + (rng.next_u64() % 26) as u8) as char);
    }
    // The rank suffix keeps words distinct.
    word.push_str(&rank.to_string());
    word
}

/// Writes `lines` lines of 5 to 15 (10 on average) Zipf-distributed words to `path`.
pub(crate) fn generate(path: &Path, lines: u64, vocabulary: usize) -> anyhow::Result<()> {
    let mut rng = SplitMix64(42);
    let vocabulary = vocabulary.max(1);
    let words: Vec<String> = (1..=vocabulary).map(|r| make_word(r, &mut rng)).collect();
    let mut cdf = Vec::with_capacity(vocabulary);
    let mut total = 0.0;
    for rank in 1..=vocabulary {
        total += 1.0 / rank as f64;
        cdf.push(total);
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut word_count = 0u64;
    for line in 0..lines {
        let n = 5 + rng.next_u64() % 11;
        for i in 0..n {
            let u = rng.next_f64() * total;
            let index = cdf.partition_point(|&c| c < u).min(vocabulary - 1);
            if i > 0 {
                out.write_all(b" ")?;
            }
            out.write_all(words[index].as_bytes())?;
        }
        out.write_all(b"\n")?;
        word_count += n;
        if (line + 1) % 500_000 == 0 {
            eprintln!("  gen-text: {} lines", line + 1);
        }
    }
    out.flush()?;
    eprintln!(
        "wrote {lines} lines, {word_count} words to {}",
        path.display()
    );
    Ok(())
}
