//! The BLAKE3 primitives of fingerprint v1: one derive-key context per object kind, so a hash
//! of one kind can never stand for a hash of another, and the 32-byte [`Hash`] type.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The version string of the fingerprint specification this crate implements.
pub const FINGERPRINT_SPEC: &str = "pipeproof-fingerprint-v1";

/// The BLAKE3 derive-key contexts of fingerprint v1 (see docs/spec/fingerprint-v1.md).
/// Changing any of them is a new spec version.
pub mod context {
    /// Row hashes; key material: the table's column names in name order.
    pub const ROW: &str = "pipeproof fingerprint v1 row";
    /// Key hashes (the key cells of a row, for matching rows across steps); key material:
    /// the key column names in key order.
    pub const KEY: &str = "pipeproof fingerprint v1 key";
    /// Per-column digests; key material: the column's name.
    pub const COLUMN: &str = "pipeproof fingerprint v1 column";
    /// The physical schema hash; no key material.
    pub const SCHEMA: &str = "pipeproof fingerprint v1 schema";
    /// Merkle tree leaves and nodes; no key material.
    pub const NODE: &str = "pipeproof fingerprint v1 merkle node";
    /// The order root (row hashes in row order); no key material.
    pub const ORDER: &str = "pipeproof fingerprint v1 order";
}

/// A 32-byte BLAKE3 output. Shown and serialised as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

/// Bytewise order (content order), compared eight bytes at a time: hashes almost always
/// differ in their first eight bytes, so sorting millions of them rarely looks further.
impl Ord for Hash {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let word = |h: &Hash, i: usize| {
            u64::from_be_bytes(h.0[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
        };
        (0..4)
            .map(|i| word(self, i).cmp(&word(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for Hash {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Hash(out))
    }
}

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Self {
        Hash(*h.as_bytes())
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Hash::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("expected 64 lowercase hex digits"))
    }
}

/// A keyed BLAKE3 hasher for one object kind: `K = derive_key(context, material)`, then
/// every hash of that kind is `keyed_hash(K, bytes)`.
#[derive(Clone, Copy)]
pub struct Keyed([u8; 32]);

impl Keyed {
    /// Derives the key for `context` and `material`.
    pub fn new(context: &str, material: &[u8]) -> Keyed {
        Keyed(blake3::derive_key(context, material))
    }

    /// Hashes `bytes` under this key.
    #[inline]
    pub fn hash(&self, bytes: &[u8]) -> Hash {
        Hash(*blake3::keyed_hash(&self.0, bytes).as_bytes())
    }

    /// A streaming hasher under this key.
    pub fn hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.0)
    }

    /// The derived key itself (published in the golden vectors so implementations can
    /// check their key derivation separately).
    pub fn key(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Feeds hashes to a streaming hasher, back to back. They are copied into a buffer of many
/// BLAKE3 chunks first: updates that large are hashed several chunks at a time (SIMD), where
/// one 32-byte update at a time is hashed a block at a time.
pub fn update_hashes(hasher: &mut blake3::Hasher, hashes: &[Hash]) {
    update_hashes_of(hasher, hashes);
}

/// [`update_hashes`] of hashes in either form ([`HashBytes`]).
pub(crate) fn update_hashes_of<T: HashBytes>(hasher: &mut blake3::Hasher, hashes: &[T]) {
    const PER_UPDATE: usize = 512;
    let mut buf = [0u8; PER_UPDATE * 32];
    for group in hashes.chunks(PER_UPDATE) {
        for (slot, h) in buf.chunks_exact_mut(32).zip(group) {
            slot.copy_from_slice(h.bytes());
        }
        hasher.update(&buf[..group.len() * 32]);
    }
}

/// A 32-byte hash as the content-order code sorts and hashes it: a [`Hash`], or the bytes
/// of one where they lie, in a bundle's row table as read (an Arrow buffer), uncopied. Both
/// order alike: bytewise.
pub(crate) trait HashBytes: Copy + Ord + Default + Send + Sync + 'static {
    /// The hash's bytes.
    fn bytes(&self) -> &[u8; 32];

    /// Runs `f` with a buffer of the thread's, kept from call to call (the content sort's
    /// scratch). Taken while in use: a use within another would find it empty.
    fn with_scratch<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R;
}

std::thread_local! {
    static HASH_SCRATCH: std::cell::RefCell<Vec<Hash>> = const { std::cell::RefCell::new(Vec::new()) };
    static BYTES_SCRATCH: std::cell::RefCell<Vec<[u8; 32]>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl HashBytes for Hash {
    #[inline]
    fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn with_scratch<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R {
        let mut scratch = HASH_SCRATCH.take();
        let r = f(&mut scratch);
        HASH_SCRATCH.set(scratch);
        r
    }
}

impl HashBytes for [u8; 32] {
    #[inline]
    fn bytes(&self) -> &[u8; 32] {
        self
    }

    fn with_scratch<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R {
        let mut scratch = BYTES_SCRATCH.take();
        let r = f(&mut scratch);
        BYTES_SCRATCH.set(scratch);
        r
    }
}

/// Appends a length-prefixed string: u64 little-endian byte length, then the UTF-8 bytes.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The key material for a list of names: u64 LE count, then each name length-prefixed.
pub(crate) fn names_material<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(names.len() as u64).to_le_bytes());
    for name in names {
        put_str(&mut out, name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn order_is_bytewise() {
        // Hashes that differ only in one byte, at every position, and in the sign bit of a
        // word: the order must be that of the byte arrays.
        let mut hashes = vec![Hash([0; 32]), Hash([0xFF; 32])];
        for i in 0..32 {
            for v in [1u8, 0x7F, 0x80, 0xFE] {
                let mut h = [0x55; 32];
                h[i] = v;
                hashes.push(Hash(h));
            }
        }
        for a in &hashes {
            for b in &hashes {
                assert_eq!(a.cmp(b), a.0.cmp(&b.0), "{a:?} vs {b:?}");
            }
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn hashing_many_hashes_is_hashing_their_bytes() {
        let hashes: Vec<Hash> = (0..1500u32)
            .map(|i| Hash(*blake3::hash(&i.to_le_bytes()).as_bytes()))
            .collect();
        let keyed = Keyed::new(context::ORDER, &[]);
        for n in [0, 1, 511, 512, 513, 1500] {
            let mut h = keyed.hasher();
            update_hashes(&mut h, &hashes[..n]);
            let bytes: Vec<u8> = hashes[..n].iter().flat_map(|h| h.0).collect();
            assert_eq!(Hash::from(h.finalize()), keyed.hash(&bytes), "{n} hashes");
        }
    }
}
