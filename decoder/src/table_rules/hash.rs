//! The `hash` rule's digest: HMAC-SHA-256 under the key ([`HashKey`]),
//! written as 64 hex digits, and the cache of recent values' digests that
//! keeps repeating values from being hashed again ([`HashCache`]).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The key `hash` rules use: HMAC-SHA-256 keyed once, cloned per value. Its
/// bytes are never printed (`Debug` says only that there is one).
#[derive(Clone)]
pub struct HashKey(Hmac<Sha256>);

impl HashKey {
    pub fn new(key: &[u8]) -> Result<Self, String> {
        if key.len() < 16 {
            return Err("the column hash key is shorter than 16 bytes: guessable".into());
        }
        Hmac::<Sha256>::new_from_slice(key)
            .map(Self)
            .map_err(|_| "the column hash key is not usable as an HMAC key".to_string())
    }

    /// `text`'s HMAC-SHA-256, from `cache` when it holds it.
    pub(crate) fn digest_cached(&self, text: &[u8], cache: &mut HashCache) -> [u8; 32] {
        let Some(p) = cache.place(text) else {
            return self.digest(text);
        };
        match cache.find(&p) {
            Some(slot) => cache.slots[slot].digest,
            None => {
                let d = self.digest(text);
                cache.insert(&p, &d);
                d
            }
        }
    }

    /// `text`'s HMAC-SHA-256.
    pub(crate) fn digest(&self, text: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(text);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(***)")
    }
}

/// `digest` as a JSON string of 64 hex digits, in one copy into `out`.
pub(crate) fn write_digest(digest: &[u8; 32], out: &mut Vec<u8>) {
    let mut text = [b'"'; 66];
    for (hex, bytes) in text[1..65].chunks_exact_mut(16).zip(digest.chunks_exact(8)) {
        hex.copy_from_slice(&hex8(bytes.try_into().unwrap_or_default()));
    }
    out.extend_from_slice(&text);
}

/// Eight bytes' 16 lowercase hex digits, computed a word at a time (a table
/// lookup a byte was 5% of a ruled parse): each byte is spread to 16 bits,
/// its nibbles to a byte each, then made digits.
fn hex8(bytes: [u8; 8]) -> [u8; 16] {
    const EVERY_16: u128 = 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
    const EVERY_BYTE: u128 = 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff;
    const NIBBLES: u128 = 0x000f_000f_000f_000f_000f_000f_000f_000f;
    const ONES: u128 = u128::from_le_bytes([1; 16]);
    let mut x = u128::from(u64::from_le_bytes(bytes));
    x = (x | x << 32) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
    x = (x | x << 16) & EVERY_16;
    x = (x | x << 8) & EVERY_BYTE;
    // Byte i is now at bits 16i..16i+8: its high nibble goes first.
    let n = (x >> 4) & NIBBLES | (x & NIBBLES) << 8;
    // 1 in each byte whose nibble is above 9 (no byte carries into the next).
    let letters = ((n + 6 * ONES) >> 4) & ONES;
    (n + 0x30 * ONES + letters * (b'a' - b'0' - 10) as u128).to_le_bytes()
}

/// The digests of recently hashed short values, by value: values repeat (a
/// customer's id in each of its orders, a column an update left as it was
/// in both images), and an HMAC-SHA-256 costs two SHA-256 blocks.
///
/// [`HashCache::SETS`] sets of [`HashCache::WAYS`] slots (2 MiB, allocated
/// on the first hash), for values up to [`HashCache::VALUE_BYTES`] bytes. A
/// slot is one 64-byte cache line: the value as four words (see [`words`])
/// and the digest. A lookup's cost is the memory it touches, not its
/// instructions (keeping the 64 hex digits instead, two lines a slot, took
/// fewer instructions and no less time). So a set's tags (the value's
/// length and 10 bits of its hash) are 16 bytes, 64 KiB for all the sets,
/// read first, and a lookup touches only the one slot whose tag matches. A
/// value's words are loads of its own bytes: building a padded copy and
/// reading it back a word at a time stalled on the bytes just stored, and
/// comparing slices called `memcmp`. A miss fills an empty slot of the set,
/// or else replaces one chosen in turn across the cache. Eight ways keep a
/// set from thrashing when values cycle (the bench's 10,973 values miss 2%;
/// two ways of the same memory missed 10%, of half of it 23%). One cache
/// serves one key: a writer's.
#[derive(Default)]
pub struct HashCache {
    sets: Vec<[u16; HashCache::WAYS]>,
    slots: Vec<Slot>,
    /// The way the next miss in a full set replaces.
    next: usize,
}

#[derive(Clone)]
#[repr(C, align(64))]
struct Slot {
    words: [u64; 4],
    digest: [u8; 32],
}

/// Where a value belongs in the cache, and the value as slots keep it. A
/// tag holds the value's length (so that equal tags and equal words are
/// equal values) and is never 0 (an empty slot).
struct Place {
    set: usize,
    tag: u16,
    words: [u64; 4],
}

impl HashCache {
    const SETS: usize = 1 << 12;
    const WAYS: usize = 8;
    const VALUE_BYTES: usize = 31;

    /// The slot holding the value at `p`, if any.
    fn find(&self, p: &Place) -> Option<usize> {
        let tags = &self.sets[p.set];
        (0..Self::WAYS)
            .filter(|&w| tags[w] == p.tag)
            .map(|w| p.set * Self::WAYS + w)
            .find(|&slot| self.slots[slot].words == p.words)
    }

    /// Keeps the digest of the value at `p`: in an empty slot of its set,
    /// or in place of the next one in turn.
    fn insert(&mut self, p: &Place, digest: &[u8; 32]) {
        let tags = &mut self.sets[p.set];
        let w = match tags.iter().position(|&t| t == 0) {
            Some(w) => w,
            None => {
                self.next = (self.next + 1) % Self::WAYS;
                self.next
            }
        };
        tags[w] = p.tag;
        self.slots[p.set * Self::WAYS + w] = Slot {
            words: p.words,
            digest: *digest,
        };
    }

    /// `text`'s place; `None` for a value too long to keep.
    fn place(&mut self, text: &[u8]) -> Option<Place> {
        if text.len() > Self::VALUE_BYTES {
            return None;
        }
        if self.slots.is_empty() {
            let empty = Slot {
                words: [0; 4],
                digest: [0; 32],
            };
            self.sets = vec![[0; Self::WAYS]; Self::SETS];
            self.slots = vec![empty; Self::SETS * Self::WAYS];
        }
        let words = words(text);
        let h = value_hash(text.len(), &words);
        Some(Place {
            set: (h >> 52) as usize,
            tag: ((text.len() as u16 + 1) << 10) | (h as u16 & 0x3ff),
            words,
        })
    }
}

/// A value of at most 31 bytes as four words of its own bytes: words that
/// overlap where its length is not a multiple of eight (as wyhash reads
/// them), and zeros. Together with the length they are the value: every
/// byte is in a word at a place its length fixes.
fn words(text: &[u8]) -> [u64; 4] {
    let n = text.len();
    let word = |at: usize| u64::from_le_bytes(text[at..at + 8].try_into().unwrap_or_default());
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            text[at..at + 4].try_into().unwrap_or_default(),
        ))
    };
    match n {
        0 => [0; 4],
        1..=3 => [
            u64::from(text[0]) | u64::from(text[n / 2]) << 8 | u64::from(text[n - 1]) << 16,
            0,
            0,
            0,
        ],
        4..=7 => [half(0) | half(n - 4) << 32, 0, 0, 0],
        8..=16 => [word(0), word(n - 8), 0, 0],
        _ => [word(0), word(8), word(n - 16), word(n - 8)],
    }
}

/// A hash of a value's length and words, mixed by wyhash's folded 128-bit
/// multiplications, whose high bits (the set) a short value's every bit
/// moves.
fn value_hash(n: usize, w: &[u64; 4]) -> u64 {
    const P: [u64; 4] = [
        0xa076_1d64_78bd_642f,
        0xe703_7ed1_a0b4_28db,
        0x8ebc_6af0_9c88_c6e3,
        0x5899_65cc_7537_4cc3,
    ];
    let a = fold(w[0] ^ P[0], w[1] ^ P[1] ^ n as u64);
    let b = fold(w[2] ^ P[2], w[3] ^ P[3]);
    fold(a ^ P[1], b ^ P[0])
}

/// The 128-bit product's halves, xored.
fn fold(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ (r >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_written_as_hex() {
        let mut digest = [0u8; 32];
        for round in 0..8u8 {
            for (i, b) in digest.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(8).wrapping_add(round);
            }
            let mut out = Vec::new();
            write_digest(&digest, &mut out);
            let want: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(out, format!("\"{want}\"").into_bytes());
        }
    }

    #[test]
    fn every_byte_of_a_value_is_in_its_words() {
        for n in 0..=HashCache::VALUE_BYTES {
            let text: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
            for i in 0..n {
                let mut other = text.clone();
                other[i] ^= 0x80;
                assert_ne!(words(&text), words(&other), "length {n}, byte {i}");
            }
        }
    }

    #[test]
    fn short_values_spread_over_the_cache() {
        let mut cache = HashCache::default();
        let mut used = std::collections::HashSet::new();
        for i in 0..1000 {
            used.insert(cache.place(i.to_string().as_bytes()).unwrap().set);
        }
        // 1,000 values in 4,096 sets: about 885 distinct if spread evenly.
        assert!(used.len() > 850, "1,000 numbers in {} sets", used.len());
    }

    #[test]
    fn the_cache_gives_what_hashing_gives() {
        let key = HashKey::new(b"0123456789abcdef-key").unwrap();
        let mut cache = HashCache::default();
        let slots = (HashCache::SETS * HashCache::WAYS) as u32;
        // More values than slots: slots are shared and replaced; long
        // values are never kept; the empty value is kept like any other.
        for i in 0..(slots * 2) {
            let v = match i % 7 {
                0 => format!("v{}{}", i % (slots + 1000), "x".repeat(50)),
                1 if i < 100 => String::new(),
                _ => format!("v{}", i % (slots + 1000)),
            };
            let mut cached = Vec::new();
            write_digest(&key.digest_cached(v.as_bytes(), &mut cache), &mut cached);
            let want: String = key
                .digest(v.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(cached, format!("\"{want}\"").into_bytes(), "{v}");
        }
    }

    #[test]
    fn repeating_values_are_found() {
        let key = HashKey::new(b"0123456789abcdef-key").unwrap();
        let mut cache = HashCache::default();
        let values: Vec<String> = (0..10_973).map(|i| format!("c{i}")).collect();
        for v in &values {
            key.digest_cached(v.as_bytes(), &mut cache);
        }
        let found = values
            .iter()
            .filter(|v| {
                let p = cache.place(v.as_bytes()).unwrap();
                cache.find(&p).is_some()
            })
            .count();
        assert!(found > 10_500, "{found} of 10,973 values found");
    }
}
