//! Keyed BLAKE3 of eight short messages at once. A row hash is a keyed BLAKE3 of one short
//! message (a row of a dozen cells is two or three 64-byte blocks), as are the leaves (1025
//! bytes) and nodes (65 bytes) of the content trees, and the single-message compression
//! cannot use more than one 128-bit lane of the CPU: with AVX2, the eight messages' blocks
//! are compressed side by side, one message per 32-bit lane, as BLAKE3's own `hash_many` does
//! for the chunks of one long input. The result is exactly `blake3::keyed_hash` of each
//! message (a test holds them equal on random lengths and keys).
//!
//! Messages of up to two chunks (2048 bytes) only: longer rows take the one-at-a-time path.
//! Where the CPU also has AVX-512 (its VL extension), the same 256-bit lanes rotate each word
//! in one instruction (`vprord`) instead of two shifts and an or, a quarter fewer operations
//! in every mixing step. Without AVX2 (checked once at run time, through pulp, which keeps
//! this crate free of `unsafe`), or off x86-64, [`Lanes::hash`] hashes each message on its
//! own.

use crate::hash::Hash;

/// Messages hashed together.
pub(crate) const LANES: usize = 8;

/// The longest message the lanes take: two BLAKE3 chunks.
pub(crate) const MAX_LEN: usize = 2 * CHUNK;

const CHUNK: usize = 1024;

/// The bytes of one message's slot: the message, zeros to the end of its last block, and
/// room past it for copies that overrun the message's end (overwritten or cut off).
pub(crate) const SLOT: usize = MAX_LEN + BLOCK;

const BLOCK: usize = 64;

/// Eight message slots, filled one at a time, then hashed together.
pub(crate) struct Slots {
    bytes: Vec<u8>,
    lens: [usize; LANES],
}

thread_local! {
    /// Each thread's slots, kept between uses: a content tree hashes a bucket's leaves or a
    /// level's nodes per call, thousands of calls, each of which would otherwise zero 17 KB.
    static SLOTS: std::cell::Cell<Option<Slots>> = const { std::cell::Cell::new(None) };
}

impl Slots {
    fn new() -> Slots {
        Slots {
            bytes: vec![0; LANES * SLOT],
            lens: [0; LANES],
        }
    }

    /// Runs `f` with this thread's slots. What earlier uses left in them does not matter:
    /// each message is written whole and [`Slots::set_len`] zeros the rest of its last
    /// block. (A use inside `f` gets slots of its own.)
    pub(crate) fn with<R>(f: impl FnOnce(&mut Slots) -> R) -> R {
        let mut slots = SLOTS.take().unwrap_or_else(Slots::new);
        let result = f(&mut slots);
        SLOTS.set(Some(slots));
        result
    }

    /// Slot `lane`, to write a message into from its start.
    #[inline]
    pub(crate) fn slot_mut(&mut self, lane: usize) -> &mut [u8] {
        &mut self.bytes[lane * SLOT..(lane + 1) * SLOT]
    }

    /// Records that slot `lane` holds a message of `len` bytes (`len <= MAX_LEN`), and zeros
    /// the rest of its last block.
    #[inline]
    pub(crate) fn set_len(&mut self, lane: usize, len: usize) {
        assert!(len <= MAX_LEN, "a lane holds at most two chunks");
        // A fixed-length write (no call to memset): zeros to the end of the last block.
        self.slot_mut(lane)[len..len + BLOCK].copy_from_slice(&[0; BLOCK]);
        self.lens[lane] = len;
    }

    /// The message in slot `lane`.
    pub(crate) fn message(&self, lane: usize) -> &[u8] {
        &self.bytes[lane * SLOT..lane * SLOT + self.lens[lane]]
    }
}

/// How this CPU hashes eight messages: in AVX2 lanes, rotating with AVX-512's instruction
/// or without it, or one message at a time.
#[derive(Clone, Copy)]
pub(crate) struct Lanes {
    way: Way,
}

#[derive(Clone, Copy)]
enum Way {
    #[cfg(target_arch = "x86_64")]
    Avx512(pulp::x86::V4),
    #[cfg(target_arch = "x86_64")]
    Avx2(pulp::x86::V3),
    OneAtATime,
}

impl Lanes {
    /// The best way this CPU has.
    pub(crate) fn detect() -> Lanes {
        Lanes::side_by_side_ways()
            .next()
            .unwrap_or(Lanes::one_at_a_time())
    }

    /// One message at a time, whatever the CPU (the reference the lanes are tested against).
    pub(crate) fn one_at_a_time() -> Lanes {
        Lanes {
            way: Way::OneAtATime,
        }
    }

    /// Every way of hashing side by side this CPU has, the fastest first (none without AVX2).
    pub(crate) fn side_by_side_ways() -> impl Iterator<Item = Lanes> {
        #[cfg(target_arch = "x86_64")]
        let ways = [
            pulp::x86::V4::try_new().map(Way::Avx512),
            pulp::x86::V3::try_new().map(Way::Avx2),
        ];
        #[cfg(not(target_arch = "x86_64"))]
        let ways: [Option<Way>; 0] = [];
        ways.into_iter().flatten().map(|way| Lanes { way })
    }

    /// `keyed_hash(key, message)` of `out.len()` messages of at most [`MAX_LEN`] bytes:
    /// `write(i, slot)` writes message `i` at the start of `slot` and returns its length.
    pub(crate) fn hash_each(
        &self,
        key: &[u8; 32],
        mut write: impl FnMut(usize, &mut [u8]) -> usize,
        out: &mut [Hash],
    ) {
        Slots::with(|slots| {
            for (group, hashes) in out.chunks_mut(LANES).enumerate() {
                for lane in 0..hashes.len() {
                    let len = write(group * LANES + lane, slots.slot_mut(lane));
                    slots.set_len(lane, len);
                }
                let n = hashes.len();
                self.hash(key, slots, n, hashes);
            }
        });
    }

    /// `keyed_hash(key, message)` of the first `n` slots into `out[..n]`.
    pub(crate) fn hash(&self, key: &[u8; 32], slots: &Slots, n: usize, out: &mut [Hash]) {
        let words: [[u8; 32]; LANES] = match self.way {
            #[cfg(target_arch = "x86_64")]
            Way::Avx512(v4) => avx2::hash8(v4, key, slots, n),
            #[cfg(target_arch = "x86_64")]
            Way::Avx2(v3) => avx2::hash8(v3, key, slots, n),
            Way::OneAtATime => std::array::from_fn(|lane| match lane < n {
                true => *blake3::keyed_hash(key, slots.message(lane)).as_bytes(),
                false => [0; 32],
            }),
        };
        for (o, w) in out[..n].iter_mut().zip(words) {
            *o = Hash(w);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{BLOCK, CHUNK, LANES, SLOT, Slots};
    use pulp::x86::{V3, V4};
    use pulp::{NullaryFnOnce, cast, u32x8};
    use std::arch::x86_64::__m256i;

    const IV: [u32; 8] = [
        0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB,
        0x5BE0CD19,
    ];
    const MSG_PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
    const CHUNK_START: u32 = 1;
    const CHUNK_END: u32 = 2;
    const PARENT: u32 = 4;
    const ROOT: u32 = 8;
    const KEYED_HASH: u32 = 16;

    /// Byte shuffles that rotate each 32-bit word right by 16 and by 8.
    const ROT16: [u8; 32] = rot_shuffle(2);
    const ROT8: [u8; 32] = rot_shuffle(1);

    const fn rot_shuffle(bytes: usize) -> [u8; 32] {
        let mut s = [0u8; 32];
        let mut i = 0;
        while i < 32 {
            let word = i / 4 * 4;
            s[i] = (word + (i % 4 + bytes) % 4) as u8;
            i += 1;
        }
        s
    }

    /// What the lanes are compiled for: AVX2's operations, and a way to rotate words.
    pub(super) trait Level: Copy {
        fn v3(self) -> V3;
        /// Runs `f` compiled with this level's target features.
        fn run<F: NullaryFnOnce>(self, f: F) -> F::Output;
        /// Each word rotated right by `R` bits (`L` = 32 - `R`).
        fn rotr<const R: i32, const L: i32>(self, x: u32x8) -> u32x8;
    }

    impl Level for V3 {
        #[inline(always)]
        fn v3(self) -> V3 {
            self
        }

        #[inline(always)]
        fn run<F: NullaryFnOnce>(self, f: F) -> F::Output {
            self.vectorize(f)
        }

        /// By 16 or 8 bits, one byte shuffle; otherwise two shifts and an or.
        #[inline(always)]
        fn rotr<const R: i32, const L: i32>(self, x: u32x8) -> u32x8 {
            match R {
                16 => shuffle(self, x, ROT16),
                8 => shuffle(self, x, ROT8),
                _ => self.or_u32x8(self.shr_const_u32x8::<R>(x), self.shl_const_u32x8::<L>(x)),
            }
        }
    }

    impl Level for V4 {
        #[inline(always)]
        fn v3(self) -> V3 {
            *self
        }

        #[inline(always)]
        fn run<F: NullaryFnOnce>(self, f: F) -> F::Output {
            self.vectorize(f)
        }

        /// One `vprord` on a 256-bit register (AVX-512VL).
        #[inline(always)]
        fn rotr<const R: i32, const L: i32>(self, x: u32x8) -> u32x8 {
            cast(self.avx512f._mm256_ror_epi32::<R>(cast(x)))
        }
    }

    /// The keyed BLAKE3 output of the message in each of the first `n` slots (the others'
    /// outputs are meaningless).
    pub(super) fn hash8<L: Level>(
        level: L,
        key: &[u8; 32],
        slots: &Slots,
        n: usize,
    ) -> [[u8; 32]; LANES] {
        // Lanes past `n` hold earlier messages: hashed as empty, and not read.
        let mut lens = slots.lens;
        lens[n..].fill(0);
        level.run(Hash8 {
            level,
            key,
            slots: &slots.bytes,
            lens: &lens,
        })
    }

    /// [`hash8`]'s work, as a method marked `inline(always)` so that it is compiled inside
    /// pulp's function with the level's target features (a closure would not be inlined
    /// there).
    struct Hash8<'a, L> {
        level: L,
        key: &'a [u8; 32],
        slots: &'a [u8],
        lens: &'a [usize; LANES],
    }

    impl<L: Level> NullaryFnOnce for Hash8<'_, L> {
        type Output = [[u8; 32]; LANES];

        #[inline(always)]
        fn call(self) -> Self::Output {
            let Hash8 {
                level,
                key,
                slots,
                lens,
            } = self;
            let v3 = level.v3();
            const PER_CHUNK: usize = CHUNK / BLOCK;
            let blocks = lens.map(|l| l.div_ceil(BLOCK).max(1));
            let last = blocks.iter().copied().max().unwrap_or(1);
            let key: [u32; 8] = cast(*key);
            let mut key_cv = [v3.splat_u32x8(0); 8];
            for (c, &w) in key_cv.iter_mut().zip(&key) {
                *c = v3.splat_u32x8(u32::from_le(w));
            }
            let mut cv = key_cv;
            let mut out = cv;
            // The first chunk's chaining value of messages longer than a chunk.
            let mut first_chunk = cv;
            for b in 0..last {
                if b > 0 && b % PER_CHUNK == 0 {
                    // Chunks begin at the same offset in every lane.
                    first_chunk = cv;
                    cv = key_cv;
                }
                let mut block_len = [0u32; LANES];
                let mut flags = [KEYED_HASH; LANES];
                let mut ends = [0u32; LANES];
                for j in 0..LANES {
                    let rest = lens[j].saturating_sub(b * BLOCK);
                    block_len[j] = rest.min(BLOCK) as u32;
                    let ended = b + 1 == blocks[j];
                    if b % PER_CHUNK == 0 {
                        flags[j] |= CHUNK_START;
                    }
                    if ended || b % PER_CHUNK == PER_CHUNK - 1 {
                        flags[j] |= CHUNK_END;
                    }
                    if ended && blocks[j] <= PER_CHUNK {
                        flags[j] |= ROOT;
                    }
                    if ended {
                        ends[j] = u32::MAX;
                    }
                }
                let counter = v3.splat_u32x8((b / PER_CHUNK) as u32);
                let m = load_block(v3, slots, b * BLOCK);
                cv = compress(level, &cv, &m, counter, cast(block_len), cast(flags));
                // A lane whose message ended at this block keeps this output; lanes
                // past their end go on compressing what follows, which nothing reads.
                let ended = v3.cmp_eq_u32x8(cast(ends), v3.splat_u32x8(u32::MAX));
                for (o, c) in out.iter_mut().zip(&cv) {
                    *o = v3.select_u32x8(ended, *c, *o);
                }
            }
            if last > PER_CHUNK {
                // Two chunks: the root is their parent node.
                let mut m = [v3.splat_u32x8(0); 16];
                m[..8].copy_from_slice(&first_chunk);
                m[8..].copy_from_slice(&out);
                let parent = compress(
                    level,
                    &key_cv,
                    &m,
                    v3.splat_u32x8(0),
                    v3.splat_u32x8(BLOCK as u32),
                    v3.splat_u32x8(PARENT | ROOT | KEYED_HASH),
                );
                let two = blocks.map(|n| if n > PER_CHUNK { u32::MAX } else { 0 });
                let two = v3.cmp_eq_u32x8(cast(two), v3.splat_u32x8(u32::MAX));
                for (o, p) in out.iter_mut().zip(&parent) {
                    *o = v3.select_u32x8(two, *p, *o);
                }
            }
            let mut words = [cast(v3.splat_u32x8(0)); 8];
            for (w, o) in words.iter_mut().zip(out) {
                *w = cast(o);
            }
            let mut hashes = [[0u8; 32]; LANES];
            for (h, lane) in hashes.iter_mut().zip(transpose(v3, words)) {
                // Little-endian words, as BLAKE3's output is: no byte swap on x86.
                *h = cast(lane);
            }
            hashes
        }
    }

    /// Block words at `offset` of every slot, word-major: `m[w]` holds word `w` of each lane.
    #[inline(always)]
    fn load_block(v3: V3, slots: &[u8], offset: usize) -> [u32x8; 16] {
        let zero: __m256i = cast(v3.splat_u32x8(0));
        let (mut lo, mut hi) = ([zero; 8], [zero; 8]);
        for lane in 0..LANES {
            let at = lane * SLOT + offset;
            let block: &[u8; 64] = slots[at..at + 64].try_into().expect("a whole block");
            let (first, second) = block.split_at(32);
            lo[lane] = cast(<[u8; 32]>::try_from(first).expect("32 bytes"));
            hi[lane] = cast(<[u8; 32]>::try_from(second).expect("32 bytes"));
        }
        let (lo, hi) = (transpose(v3, lo), transpose(v3, hi));
        let mut m = [v3.splat_u32x8(0); 16];
        for w in 0..8 {
            // BLAKE3's words are little-endian, as x86's are: no byte swap.
            m[w] = cast(lo[w]);
            m[w + 8] = cast(hi[w]);
        }
        m
    }

    /// An 8 x 8 transpose of 32-bit words: row `r`'s word `c` becomes row `c`'s word `r`.
    #[inline(always)]
    fn transpose(v3: V3, v: [__m256i; 8]) -> [__m256i; 8] {
        let a = v3.avx2;
        let ab_0145 = a._mm256_unpacklo_epi32(v[0], v[1]);
        let ab_2367 = a._mm256_unpackhi_epi32(v[0], v[1]);
        let cd_0145 = a._mm256_unpacklo_epi32(v[2], v[3]);
        let cd_2367 = a._mm256_unpackhi_epi32(v[2], v[3]);
        let ef_0145 = a._mm256_unpacklo_epi32(v[4], v[5]);
        let ef_2367 = a._mm256_unpackhi_epi32(v[4], v[5]);
        let gh_0145 = a._mm256_unpacklo_epi32(v[6], v[7]);
        let gh_2367 = a._mm256_unpackhi_epi32(v[6], v[7]);
        let abcd_04 = a._mm256_unpacklo_epi64(ab_0145, cd_0145);
        let abcd_15 = a._mm256_unpackhi_epi64(ab_0145, cd_0145);
        let abcd_26 = a._mm256_unpacklo_epi64(ab_2367, cd_2367);
        let abcd_37 = a._mm256_unpackhi_epi64(ab_2367, cd_2367);
        let efgh_04 = a._mm256_unpacklo_epi64(ef_0145, gh_0145);
        let efgh_15 = a._mm256_unpackhi_epi64(ef_0145, gh_0145);
        let efgh_26 = a._mm256_unpacklo_epi64(ef_2367, gh_2367);
        let efgh_37 = a._mm256_unpackhi_epi64(ef_2367, gh_2367);
        [
            a._mm256_permute2x128_si256::<0x20>(abcd_04, efgh_04),
            a._mm256_permute2x128_si256::<0x20>(abcd_15, efgh_15),
            a._mm256_permute2x128_si256::<0x20>(abcd_26, efgh_26),
            a._mm256_permute2x128_si256::<0x20>(abcd_37, efgh_37),
            a._mm256_permute2x128_si256::<0x31>(abcd_04, efgh_04),
            a._mm256_permute2x128_si256::<0x31>(abcd_15, efgh_15),
            a._mm256_permute2x128_si256::<0x31>(abcd_26, efgh_26),
            a._mm256_permute2x128_si256::<0x31>(abcd_37, efgh_37),
        ]
    }

    #[inline(always)]
    fn shuffle(v3: V3, x: u32x8, table: [u8; 32]) -> u32x8 {
        cast(v3.avx2._mm256_shuffle_epi8(cast(x), cast(table)))
    }

    // No closures below: a closure is a function of its own, compiled without the AVX2
    // target feature, so the intrinsics in it would not be inlined.

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn g<L: Level>(
        level: L,
        s: &mut [u32x8; 16],
        a: usize,
        b: usize,
        c: usize,
        d: usize,
        x: u32x8,
        y: u32x8,
    ) {
        let v3 = level.v3();
        s[a] = v3.wrapping_add_u32x8(v3.wrapping_add_u32x8(s[a], s[b]), x);
        s[d] = level.rotr::<16, 16>(v3.xor_u32x8(s[d], s[a]));
        s[c] = v3.wrapping_add_u32x8(s[c], s[d]);
        s[b] = level.rotr::<12, 20>(v3.xor_u32x8(s[b], s[c]));
        s[a] = v3.wrapping_add_u32x8(v3.wrapping_add_u32x8(s[a], s[b]), y);
        s[d] = level.rotr::<8, 24>(v3.xor_u32x8(s[d], s[a]));
        s[c] = v3.wrapping_add_u32x8(s[c], s[d]);
        s[b] = level.rotr::<7, 25>(v3.xor_u32x8(s[b], s[c]));
    }

    /// One BLAKE3 compression per lane (chunk counters below 2^32); returns the new chaining
    /// values, which for a ROOT block are the hash.
    #[inline(always)]
    fn compress<L: Level>(
        level: L,
        cv: &[u32x8; 8],
        m: &[u32x8; 16],
        counter: u32x8,
        block_len: u32x8,
        flags: u32x8,
    ) -> [u32x8; 8] {
        let v3 = level.v3();
        let zero = v3.splat_u32x8(0);
        let mut s = [
            cv[0],
            cv[1],
            cv[2],
            cv[3],
            cv[4],
            cv[5],
            cv[6],
            cv[7],
            v3.splat_u32x8(IV[0]),
            v3.splat_u32x8(IV[1]),
            v3.splat_u32x8(IV[2]),
            v3.splat_u32x8(IV[3]),
            counter,
            zero,
            block_len,
            flags,
        ];
        let mut m = *m;
        for round in 0..7 {
            g(level, &mut s, 0, 4, 8, 12, m[0], m[1]);
            g(level, &mut s, 1, 5, 9, 13, m[2], m[3]);
            g(level, &mut s, 2, 6, 10, 14, m[4], m[5]);
            g(level, &mut s, 3, 7, 11, 15, m[6], m[7]);
            g(level, &mut s, 0, 5, 10, 15, m[8], m[9]);
            g(level, &mut s, 1, 6, 11, 12, m[10], m[11]);
            g(level, &mut s, 2, 7, 8, 13, m[12], m[13]);
            g(level, &mut s, 3, 4, 9, 14, m[14], m[15]);
            if round < 6 {
                let before = m;
                for (to, &from) in m.iter_mut().zip(&MSG_PERMUTATION) {
                    *to = before[from];
                }
            }
        }
        let mut out = [zero; 8];
        for (i, o) in out.iter_mut().enumerate() {
            *o = v3.xor_u32x8(s[i], s[i + 8]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of `len` bytes, different for every seed.
    fn message(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// The hashes of `messages` by every side-by-side way this CPU has, and one at a time.
    fn hash_all(key: &[u8; 32], messages: &[Vec<u8>]) -> (Vec<Vec<Hash>>, Vec<Hash>) {
        let mut slots = Slots::new();
        for (lane, m) in messages.iter().enumerate() {
            // Garbage past the message's end, as the row gatherer leaves it.
            slots.slot_mut(lane).fill(0xAB);
            slots.slot_mut(lane)[..m.len()].copy_from_slice(m);
            slots.set_len(lane, m.len());
        }
        let n = messages.len();
        let hash = |lanes: Lanes| {
            let mut out = vec![Hash::default(); LANES];
            lanes.hash(key, &slots, n, &mut out);
            out.truncate(n);
            out
        };
        let fast = Lanes::side_by_side_ways().map(hash).collect();
        (fast, hash(Lanes::one_at_a_time()))
    }

    #[test]
    fn the_reference_path_is_blake3_keyed_hash() {
        let key = [7u8; 32];
        let messages: Vec<Vec<u8>> = (0..LANES).map(|i| message(i as u64, i * 100)).collect();
        let (_, reference) = hash_all(&key, &messages);
        for (m, h) in messages.iter().zip(&reference) {
            assert_eq!(h.0, *blake3::keyed_hash(&key, m).as_bytes());
        }
    }

    #[test]
    fn lanes_equal_blake3_at_every_length_up_to_two_chunks() {
        if Lanes::side_by_side_ways().next().is_none() {
            // Then the lanes are the one-at-a-time reference; nothing more to compare.
            eprintln!("this CPU has no AVX2: the side-by-side path is not exercised here");
        }
        let key: [u8; 32] = message(99, 32).try_into().unwrap();
        for first in (0..=MAX_LEN).step_by(LANES) {
            // Eight lengths in one call, so every block and chunk boundary (0, 63, 64, 65,
            // 1023, 1024, 1025, 2048 ...) meets lanes of one chunk and of two that end sooner
            // and later.
            let messages: Vec<Vec<u8>> = (0..LANES)
                .map(|j| message((first + j) as u64, (first + j * 7) % (MAX_LEN + 1)))
                .collect();
            let (ways, reference) = hash_all(&key, &messages);
            for fast in ways {
                assert_eq!(fast, reference, "lengths from {first}");
            }
        }
    }

    #[test]
    fn fewer_than_eight_messages_hash_alone() {
        let key = [1u8; 32];
        for n in 0..=LANES {
            let messages: Vec<Vec<u8>> = (0..n).map(|i| message(i as u64, 140 + i)).collect();
            let (ways, reference) = hash_all(&key, &messages);
            for fast in ways {
                assert_eq!(fast, reference, "{n} messages");
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_lengths_and_keys_hash_as_blake3_does(
                key in proptest::array::uniform32(any::<u8>()),
                lens in proptest::array::uniform8(0usize..=MAX_LEN),
                seed in any::<u64>(),
            ) {
                let messages: Vec<Vec<u8>> =
                    lens.iter().enumerate().map(|(i, &l)| message(seed + i as u64, l)).collect();
                let (ways, _) = hash_all(&key, &messages);
                for fast in ways {
                    for (m, h) in messages.iter().zip(&fast) {
                        prop_assert_eq!(h.0, *blake3::keyed_hash(&key, m).as_bytes());
                    }
                }
            }
        }
    }
}
