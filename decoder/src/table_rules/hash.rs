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

    /// `text`'s HMAC-SHA-256 as a JSON string of 64 hex digits, from
    /// `cache` when it holds it.
    pub(crate) fn write(&self, text: &[u8], out: &mut Vec<u8>, cache: &mut HashCache) {
        let digest = match cache.place(text) {
            Some(p) => match cache.find(&p) {
                Some(slot) => cache.slots[slot].digest,
                None => {
                    let d = self.digest(text);
                    cache.insert(&p, &d);
                    d
                }
            },
            None => self.digest(text),
        };
        out.reserve(66);
        out.push(b'"');
        out.extend_from_slice(&hex(&digest));
        out.push(b'"');
    }

    fn digest(&self, text: &[u8]) -> [u8; 32] {
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

/// A digest's 64 lowercase hex digits.
fn hex(digest: &[u8; 32]) -> [u8; 64] {
    let mut hex = [0u8; 64];
    for (pair, &b) in hex.chunks_exact_mut(2).zip(digest) {
        pair.copy_from_slice(&HEX_PAIRS[b as usize]);
    }
    hex
}

/// Each byte's two lowercase hex digits: one lookup a byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

/// The digests of recently hashed short values, by value: values repeat (a
/// customer's id in each of its orders, a column an update left as it was
/// in both images), and an HMAC-SHA-256 costs two SHA-256 blocks.
///
/// [`HashCache::SETS`] sets of [`HashCache::WAYS`] slots (2 MiB, allocated
/// on the first hash), for values up to [`HashCache::VALUE_BYTES`] bytes.
/// A slot is one 64-byte cache line: the value as 32 bytes, its length then
/// its bytes zero-padded (compared in one go, without a call), and the
/// digest. A lookup's cost is the memory it touches, not its instructions
/// (keeping the 64 hex digits instead, two lines a slot, took fewer
/// instructions and no less time). A set's tags (16 bits of each
/// slot's value hash, in 16 bytes) are read first, so a lookup touches the
/// one slot whose tag matches; a miss replaces the set's slots in turn.
/// Eight ways keep a set from thrashing when values cycle (the bench's
/// 10,973 values miss 2%; two ways of the same memory missed 10%, of half
/// of it 23%). One cache serves one key: a writer's.
#[derive(Default)]
pub struct HashCache {
    sets: Vec<Set>,
    slots: Vec<Slot>,
}

#[derive(Clone, Default)]
#[repr(C, align(32))]
struct Set {
    /// 0: an empty slot (a tag is never 0).
    tags: [u16; HashCache::WAYS],
    /// The slot the next miss replaces.
    next: u8,
}

#[derive(Clone)]
#[repr(C, align(64))]
struct Slot {
    /// The value's length, then its bytes, zero-padded.
    value: [u8; 32],
    digest: [u8; 32],
}

/// Where a value belongs in the cache, and the value as slots keep it.
struct Place {
    set: usize,
    tag: u16,
    value: [u8; 32],
}

impl HashCache {
    const SETS: usize = 1 << 12;
    const WAYS: usize = 8;
    const VALUE_BYTES: usize = 31;

    /// The slot holding the value at `p`, if any.
    fn find(&self, p: &Place) -> Option<usize> {
        let set = &self.sets[p.set];
        (0..Self::WAYS)
            .map(|w| p.set * Self::WAYS + w)
            .zip(set.tags)
            .find(|&(slot, tag)| tag == p.tag && self.slots[slot].value == p.value)
            .map(|(slot, _)| slot)
    }

    /// Keeps the digest of the value at `p` in place of its set's oldest.
    fn insert(&mut self, p: &Place, digest: &[u8; 32]) {
        let set = &mut self.sets[p.set];
        let w = set.next as usize;
        set.next = ((w + 1) % Self::WAYS) as u8;
        set.tags[w] = p.tag;
        let slot = p.set * Self::WAYS + w;
        self.slots[slot] = Slot {
            value: p.value,
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
                value: [0; 32],
                digest: [0; 32],
            };
            self.sets = vec![Set::default(); Self::SETS];
            self.slots = vec![empty; Self::SETS * Self::WAYS];
        }
        let mut value = [0; 32];
        value[0] = text.len() as u8;
        value[1..=text.len()].copy_from_slice(text);
        // The four words, multiplied in, then MurmurHash3's finalizer (which
        // spreads a short value's bits over the high ones the set is taken
        // from).
        let mut h = 0u64;
        for w in value.chunks_exact(8) {
            let word = u64::from_le_bytes(w.try_into().unwrap_or_default());
            h = (h ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^= h >> 29;
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        Some(Place {
            set: (h >> 52) as usize,
            tag: h as u16 | 1,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_pairs_are_each_bytes_digits() {
        for b in 0..=255u8 {
            assert_eq!(HEX_PAIRS[b as usize], *format!("{b:02x}").as_bytes());
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
            key.write(v.as_bytes(), &mut cached, &mut cache);
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
            key.write(v.as_bytes(), &mut Vec::new(), &mut cache);
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
