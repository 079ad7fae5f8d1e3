//! Keyed BLAKE3 of eight or sixteen short messages at once. A row hash is a keyed BLAKE3 of
//! one short message (a row of a dozen cells is two or three 64-byte blocks), as are the
//! leaves (1025 bytes) and nodes (65 bytes) of the content trees, and the single-message
//! compression cannot use more than one 128-bit lane of the CPU: with AVX2, eight messages'
//! blocks are compressed side by side, one message per 32-bit lane of 256-bit vectors, as
//! BLAKE3's own `hash_many` does for the chunks of one long input; with AVX-512, sixteen, in
//! 512-bit vectors. The result is exactly `blake3::keyed_hash` of each message (a test holds
//! them equal on random lengths and keys).
//!
//! Messages of up to two chunks (2048 bytes) only: longer rows take the one-at-a-time path.
//! One compression code serves both widths (generic over the vector); AVX-512 also rotates
//! each word in one instruction (`vprord`) where AVX2 takes a shuffle or two shifts and an
//! or. How many messages a call hashes is [`Lanes::width`]. Without AVX2 (checked once at
//! run time, through pulp, which keeps this crate free of `unsafe`), or off x86-64,
//! [`Lanes::hash`] hashes each message on its own.

use crate::hash::Hash;

/// The most messages hashed together (the widest [`Lanes::width`]).
pub(crate) const MAX_LANES: usize = 16;

/// The longest message the lanes take: two BLAKE3 chunks.
pub(crate) const MAX_LEN: usize = 2 * CHUNK;

const CHUNK: usize = 1024;

/// The bytes of one message's slot: the message, zeros to the end of its last block, and
/// room past it for copies that overrun the message's end (overwritten or cut off).
pub(crate) const SLOT: usize = MAX_LEN + BLOCK;

const BLOCK: usize = 64;

/// Sixteen message slots, filled one at a time, then hashed together (as many of them as
/// [`Lanes::width`] at a time).
pub(crate) struct Slots {
    bytes: Vec<u8>,
    lens: [usize; MAX_LANES],
}

thread_local! {
    /// Each thread's slots, kept between uses: a content tree hashes a bucket's leaves or a
    /// level's nodes per call, thousands of calls, each of which would otherwise zero 34 KB.
    static SLOTS: std::cell::Cell<Option<Slots>> = const { std::cell::Cell::new(None) };
}

impl Slots {
    fn new() -> Slots {
        Slots {
            bytes: vec![0; MAX_LANES * SLOT],
            lens: [0; MAX_LANES],
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

    /// Every slot, in lane order, to write messages into from their starts.
    #[inline]
    pub(crate) fn each_mut(&mut self) -> std::slice::ChunksExactMut<'_, u8> {
        self.bytes.chunks_exact_mut(SLOT)
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

/// How this CPU hashes several messages: sixteen in AVX-512 lanes, eight in AVX2 lanes, or
/// one message at a time.
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

    /// How many messages one [`Lanes::hash`] takes at most: 16 with AVX-512, 8 with AVX2
    /// (and [`MAX_LANES`] one at a time).
    #[inline]
    pub(crate) fn width(&self) -> usize {
        match self.way {
            #[cfg(target_arch = "x86_64")]
            Way::Avx512(_) => <pulp::x86::V4 as wide::Level>::LANES,
            #[cfg(target_arch = "x86_64")]
            Way::Avx2(_) => <pulp::x86::V3 as wide::Level>::LANES,
            Way::OneAtATime => MAX_LANES,
        }
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
            let width = self.width();
            for (group, hashes) in out.chunks_mut(width).enumerate() {
                for lane in 0..hashes.len() {
                    let len = write(group * width + lane, slots.slot_mut(lane));
                    slots.set_len(lane, len);
                }
                let n = hashes.len();
                self.hash(key, slots, n, hashes);
            }
        });
    }

    /// `keyed_hash(key, message)` of the first `n` slots (`n <= self.width()`) into
    /// `out[..n]`.
    pub(crate) fn hash(&self, key: &[u8; 32], slots: &Slots, n: usize, out: &mut [Hash]) {
        let words: [[u8; 32]; MAX_LANES] = match self.way {
            #[cfg(target_arch = "x86_64")]
            Way::Avx512(v4) => wide::hash(v4, key, slots, n),
            #[cfg(target_arch = "x86_64")]
            Way::Avx2(v3) => wide::hash(v3, key, slots, n),
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
mod wide {
    use super::{BLOCK, CHUNK, MAX_LANES, SLOT, Slots};
    use pulp::x86::{V3, V4};
    use pulp::{NullaryFnOnce, b16, cast, m32x8, u32x8, u32x16};
    use std::arch::x86_64::{__m256i, __m512i};

    /// Each slot's 32-byte hash (of the first `n` slots; the others' are meaningless).
    pub(super) type Hashes = [[u8; 32]; MAX_LANES];

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

    /// Lane `j`'s bit in a mask of eight lanes.
    const LANE_BITS: [u32; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

    /// What the lanes are compiled for: a vector of one 32-bit word of each of
    /// [`Level::LANES`] messages, and the operations on it the compression needs.
    pub(super) trait Level: Copy {
        /// Messages hashed side by side.
        const LANES: usize;
        /// One word of each message.
        type V: Copy;
        /// One bit of each message.
        type M: Copy;
        /// Runs `f` compiled with this level's target features.
        fn run<F: NullaryFnOnce>(self, f: F) -> F::Output;
        fn splat(self, x: u32) -> Self::V;
        /// The first [`Level::LANES`] words of `x`, one to a lane.
        fn per_lane(self, x: &[u32; MAX_LANES]) -> Self::V;
        fn add(self, a: Self::V, b: Self::V) -> Self::V;
        fn xor(self, a: Self::V, b: Self::V) -> Self::V;
        /// Each word rotated right by `R` bits (`L` = 32 - `R`).
        fn rotr<const R: i32, const L: i32>(self, x: Self::V) -> Self::V;
        /// The lanes whose bit is set in `bits`.
        fn mask(self, bits: u16) -> Self::M;
        /// `if_true` in the lanes of `m`, `if_false` in the others.
        fn select(self, m: Self::M, if_true: Self::V, if_false: Self::V) -> Self::V;
        /// Block words at `offset` of every slot, word-major: word `w` of each lane in `m[w]`.
        fn load_block(self, slots: &[u8], offset: usize) -> [Self::V; 16];
        /// Each lane's eight output words, as the lane's hash.
        fn store(self, words: [Self::V; 8]) -> Hashes;
    }

    /// AVX2: eight lanes of 256 bits, rotating by shuffles and shifts.
    impl Level for V3 {
        const LANES: usize = 8;
        type V = u32x8;
        type M = m32x8;

        #[inline(always)]
        fn run<F: NullaryFnOnce>(self, f: F) -> F::Output {
            self.vectorize(f)
        }

        #[inline(always)]
        fn splat(self, x: u32) -> u32x8 {
            self.splat_u32x8(x)
        }

        #[inline(always)]
        fn per_lane(self, x: &[u32; MAX_LANES]) -> u32x8 {
            cast(*x.first_chunk::<8>().expect("8 of 16"))
        }

        #[inline(always)]
        fn add(self, a: u32x8, b: u32x8) -> u32x8 {
            self.wrapping_add_u32x8(a, b)
        }

        #[inline(always)]
        fn xor(self, a: u32x8, b: u32x8) -> u32x8 {
            self.xor_u32x8(a, b)
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

        #[inline(always)]
        fn mask(self, bits: u16) -> m32x8 {
            let lane_bits = cast(LANE_BITS);
            let set = self.and_u32x8(self.splat_u32x8(bits.into()), lane_bits);
            self.cmp_eq_u32x8(set, lane_bits)
        }

        #[inline(always)]
        fn select(self, m: m32x8, if_true: u32x8, if_false: u32x8) -> u32x8 {
            self.select_u32x8(m, if_true, if_false)
        }

        #[inline(always)]
        fn load_block(self, slots: &[u8], offset: usize) -> [u32x8; 16] {
            let zero: __m256i = cast(self.splat_u32x8(0));
            let (mut lo, mut hi) = ([zero; 8], [zero; 8]);
            for lane in 0..8 {
                let block = block(slots, lane, offset);
                let (first, second) = block.split_at(32);
                lo[lane] = cast(<[u8; 32]>::try_from(first).expect("32 bytes"));
                hi[lane] = cast(<[u8; 32]>::try_from(second).expect("32 bytes"));
            }
            let (lo, hi) = (transpose8(self, lo), transpose8(self, hi));
            // BLAKE3's words are little-endian, as x86's are: no byte swap.
            cast([lo, hi])
        }

        #[inline(always)]
        fn store(self, words: [u32x8; 8]) -> Hashes {
            let mut hashes = [[0u8; 32]; MAX_LANES];
            // Little-endian words, as BLAKE3's output is: no byte swap on x86.
            hashes[..8].copy_from_slice(&cast::<_, [[u8; 32]; 8]>(transpose8(self, cast(words))));
            hashes
        }
    }

    /// AVX-512: sixteen lanes of 512 bits, rotating in one instruction (`vprord`).
    impl Level for V4 {
        const LANES: usize = 16;
        type V = u32x16;
        type M = b16;

        #[inline(always)]
        fn run<F: NullaryFnOnce>(self, f: F) -> F::Output {
            self.vectorize(f)
        }

        #[inline(always)]
        fn splat(self, x: u32) -> u32x16 {
            self.splat_u32x16(x)
        }

        #[inline(always)]
        fn per_lane(self, x: &[u32; MAX_LANES]) -> u32x16 {
            cast(*x)
        }

        #[inline(always)]
        fn add(self, a: u32x16, b: u32x16) -> u32x16 {
            self.wrapping_add_u32x16(a, b)
        }

        #[inline(always)]
        fn xor(self, a: u32x16, b: u32x16) -> u32x16 {
            self.xor_u32x16(a, b)
        }

        #[inline(always)]
        fn rotr<const R: i32, const L: i32>(self, x: u32x16) -> u32x16 {
            cast(self.avx512f._mm512_ror_epi32::<R>(cast(x)))
        }

        #[inline(always)]
        fn mask(self, bits: u16) -> b16 {
            b16(bits)
        }

        #[inline(always)]
        fn select(self, m: b16, if_true: u32x16, if_false: u32x16) -> u32x16 {
            self.select_u32x16(m, if_true, if_false)
        }

        #[inline(always)]
        fn load_block(self, slots: &[u8], offset: usize) -> [u32x16; 16] {
            let mut rows: [__m512i; 16] = cast([0u8; 1024]);
            for (lane, row) in rows.iter_mut().enumerate() {
                *row = cast(*block(slots, lane, offset));
            }
            cast(transpose16(self, rows))
        }

        #[inline(always)]
        fn store(self, words: [u32x16; 8]) -> Hashes {
            // Lanes 0 to 7 are the low half of each vector, 8 to 15 the high one.
            let halves: [[__m256i; 2]; 8] = cast(words);
            let (mut lo, mut hi) = ([halves[0][0]; 8], [halves[0][0]; 8]);
            for (w, [l, h]) in halves.into_iter().enumerate() {
                (lo[w], hi[w]) = (l, h);
            }
            // Little-endian words, as BLAKE3's output is: no byte swap on x86.
            cast([transpose8(*self, lo), transpose8(*self, hi)])
        }
    }

    /// The 64 bytes at `offset` of slot `lane`.
    #[inline(always)]
    fn block(slots: &[u8], lane: usize, offset: usize) -> &[u8; 64] {
        let at = lane * SLOT + offset;
        slots[at..at + 64].try_into().expect("a whole block")
    }

    /// The keyed BLAKE3 output of the message in each of the first `n` slots (the others'
    /// outputs are meaningless).
    pub(super) fn hash<L: Level>(level: L, key: &[u8; 32], slots: &Slots, n: usize) -> Hashes {
        assert!(n <= L::LANES);
        // Lanes past `n` hold earlier messages: hashed as empty, and not read.
        let mut lens = slots.lens;
        lens[n..].fill(0);
        level.run(Hash {
            level,
            key,
            slots: &slots.bytes,
            lens: &lens,
        })
    }

    /// [`hash`]'s work, as a method marked `inline(always)` so that it is compiled inside
    /// pulp's function with the level's target features (a closure would not be inlined
    /// there).
    struct Hash<'a, L> {
        level: L,
        key: &'a [u8; 32],
        slots: &'a [u8],
        lens: &'a [usize; MAX_LANES],
    }

    impl<L: Level> NullaryFnOnce for Hash<'_, L> {
        type Output = Hashes;

        #[inline(always)]
        fn call(self) -> Self::Output {
            let Hash {
                level,
                key,
                slots,
                lens,
            } = self;
            const PER_CHUNK: usize = CHUNK / BLOCK;
            let blocks = lens.map(|l| l.div_ceil(BLOCK).max(1));
            let last = blocks.iter().copied().max().unwrap_or(1);
            let key: [u32; 8] = cast(*key);
            let mut key_cv = [level.splat(0); 8];
            for (c, &w) in key_cv.iter_mut().zip(&key) {
                *c = level.splat(u32::from_le(w));
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
                let mut block_len = [0u32; MAX_LANES];
                let mut flags = [KEYED_HASH; MAX_LANES];
                let mut ends = 0u16;
                for j in 0..L::LANES {
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
                    ends |= u16::from(ended) << j;
                }
                let counter = level.splat((b / PER_CHUNK) as u32);
                let m = level.load_block(slots, b * BLOCK);
                let block_len = level.per_lane(&block_len);
                let flags = level.per_lane(&flags);
                cv = compress(level, &cv, &m, counter, block_len, flags);
                // A lane whose message ended at this block keeps this output; lanes
                // past their end go on compressing what follows, which nothing reads.
                let ended = level.mask(ends);
                for (o, c) in out.iter_mut().zip(&cv) {
                    *o = level.select(ended, *c, *o);
                }
            }
            if last > PER_CHUNK {
                // Two chunks: the root is their parent node.
                let mut m = [level.splat(0); 16];
                m[..8].copy_from_slice(&first_chunk);
                m[8..].copy_from_slice(&out);
                let parent = compress(
                    level,
                    &key_cv,
                    &m,
                    level.splat(0),
                    level.splat(BLOCK as u32),
                    level.splat(PARENT | ROOT | KEYED_HASH),
                );
                let mut two = 0u16;
                for (j, &n) in blocks.iter().enumerate() {
                    two |= u16::from(n > PER_CHUNK) << j;
                }
                let two = level.mask(two);
                for (o, p) in out.iter_mut().zip(&parent) {
                    *o = level.select(two, *p, *o);
                }
            }
            level.store(out)
        }
    }

    /// An 8 x 8 transpose of 32-bit words: row `r`'s word `c` becomes row `c`'s word `r`.
    #[inline(always)]
    fn transpose8(v3: V3, v: [__m256i; 8]) -> [__m256i; 8] {
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

    /// A 16 x 16 transpose of 32-bit words, as BLAKE3's AVX-512 code does it: interleave 32-
    /// then 64-bit words within 128-bit lanes, then 128-bit lanes twice.
    #[inline(always)]
    fn transpose16(v4: V4, v: [__m512i; 16]) -> [__m512i; 16] {
        let a = v4.avx512f;
        // Pair `p` (rows 2p, 2p + 1): in each 128-bit lane `q`, columns 4q, 4q + 1
        // interleaved (`lo`) and 4q + 2, 4q + 3 (`hi`).
        let mut pairs_lo = [v[0]; 8];
        let mut pairs_hi = [v[0]; 8];
        for p in 0..8 {
            pairs_lo[p] = a._mm512_unpacklo_epi32(v[2 * p], v[2 * p + 1]);
            pairs_hi[p] = a._mm512_unpackhi_epi32(v[2 * p], v[2 * p + 1]);
        }
        // Quad `q` (rows 4q..4q + 4), `k` = 0..4: in each 128-bit lane `i`, column 4i + k
        // of the four rows.
        let mut quads = [[v[0]; 4]; 4];
        for q in 0..4 {
            let (l0, l1) = (pairs_lo[2 * q], pairs_lo[2 * q + 1]);
            let (h0, h1) = (pairs_hi[2 * q], pairs_hi[2 * q + 1]);
            quads[q] = [
                a._mm512_unpacklo_epi64(l0, l1),
                a._mm512_unpackhi_epi64(l0, l1),
                a._mm512_unpacklo_epi64(h0, h1),
                a._mm512_unpackhi_epi64(h0, h1),
            ];
        }
        // Eight rows (`o` = 0 for 0..8, 1 for 8..16), `k` = 0..8: columns k and k + 8 of
        // rows 0..4 of them, then of rows 4..8.
        let mut octs = [[v[0]; 8]; 2];
        for o in 0..2 {
            for k in 0..4 {
                let (x, y) = (quads[2 * o][k], quads[2 * o + 1][k]);
                octs[o][k] = a._mm512_shuffle_i32x4::<0x88>(x, y);
                octs[o][k + 4] = a._mm512_shuffle_i32x4::<0xDD>(x, y);
            }
        }
        let mut out = [v[0]; 16];
        for k in 0..8 {
            out[k] = a._mm512_shuffle_i32x4::<0x88>(octs[0][k], octs[1][k]);
            out[k + 8] = a._mm512_shuffle_i32x4::<0xDD>(octs[0][k], octs[1][k]);
        }
        out
    }

    #[inline(always)]
    fn shuffle(v3: V3, x: u32x8, table: [u8; 32]) -> u32x8 {
        cast(v3.avx2._mm256_shuffle_epi8(cast(x), cast(table)))
    }

    // No closures below: a closure is a function of its own, compiled without the level's
    // target features, so the intrinsics in it would not be inlined.

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn g<L: Level>(
        level: L,
        s: &mut [L::V; 16],
        a: usize,
        b: usize,
        c: usize,
        d: usize,
        x: L::V,
        y: L::V,
    ) {
        s[a] = level.add(level.add(s[a], s[b]), x);
        s[d] = level.rotr::<16, 16>(level.xor(s[d], s[a]));
        s[c] = level.add(s[c], s[d]);
        s[b] = level.rotr::<12, 20>(level.xor(s[b], s[c]));
        s[a] = level.add(level.add(s[a], s[b]), y);
        s[d] = level.rotr::<8, 24>(level.xor(s[d], s[a]));
        s[c] = level.add(s[c], s[d]);
        s[b] = level.rotr::<7, 25>(level.xor(s[b], s[c]));
    }

    /// One BLAKE3 compression per lane (chunk counters below 2^32); returns the new chaining
    /// values, which for a ROOT block are the hash.
    #[inline(always)]
    fn compress<L: Level>(
        level: L,
        cv: &[L::V; 8],
        m: &[L::V; 16],
        counter: L::V,
        block_len: L::V,
        flags: L::V,
    ) -> [L::V; 8] {
        let zero = level.splat(0);
        let mut s = [
            cv[0],
            cv[1],
            cv[2],
            cv[3],
            cv[4],
            cv[5],
            cv[6],
            cv[7],
            level.splat(IV[0]),
            level.splat(IV[1]),
            level.splat(IV[2]),
            level.splat(IV[3]),
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
            *o = level.xor(s[i], s[i + 8]);
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

    /// The hashes of `messages` by `lanes`, as many at a time as its width, into slots that
    /// hold garbage past each message's end and, in the lanes a short group leaves out, the
    /// group before's messages (as the row gatherer leaves them).
    fn hash_with(lanes: Lanes, key: &[u8; 32], messages: &[Vec<u8>]) -> Vec<Hash> {
        let mut slots = Slots::new();
        let mut out = Vec::new();
        for group in messages.chunks(lanes.width()) {
            for (lane, m) in group.iter().enumerate() {
                slots.slot_mut(lane).fill(0xAB ^ lane as u8);
                slots.slot_mut(lane)[..m.len()].copy_from_slice(m);
                slots.set_len(lane, m.len());
            }
            let mut hashes = vec![Hash::default(); MAX_LANES];
            lanes.hash(key, &slots, group.len(), &mut hashes);
            out.extend_from_slice(&hashes[..group.len()]);
        }
        out
    }

    /// The hashes of `messages` by every side-by-side way this CPU has, and one at a time.
    fn hash_all(key: &[u8; 32], messages: &[Vec<u8>]) -> (Vec<Vec<Hash>>, Vec<Hash>) {
        let fast = Lanes::side_by_side_ways()
            .map(|lanes| hash_with(lanes, key, messages))
            .collect();
        (fast, hash_with(Lanes::one_at_a_time(), key, messages))
    }

    fn blake3(key: &[u8; 32], messages: &[Vec<u8>]) -> Vec<Hash> {
        let hash = |m: &Vec<u8>| Hash(*blake3::keyed_hash(key, m).as_bytes());
        messages.iter().map(hash).collect()
    }

    #[test]
    fn the_ways_this_cpu_has_are_tested() {
        let widths: Vec<usize> = Lanes::side_by_side_ways().map(|l| l.width()).collect();
        eprintln!("side-by-side widths on this CPU: {widths:?}");
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(pulp::x86::V4::try_new().is_some(), widths.contains(&16));
            assert_eq!(pulp::x86::V3::try_new().is_some(), widths.contains(&8));
        }
        assert!(widths.iter().all(|&w| w <= MAX_LANES));
        assert_eq!(Lanes::one_at_a_time().width(), MAX_LANES);
    }

    #[test]
    fn the_reference_path_is_blake3_keyed_hash() {
        let key = [7u8; 32];
        let messages: Vec<Vec<u8>> = (0..MAX_LANES).map(|i| message(i as u64, i * 130)).collect();
        let (_, reference) = hash_all(&key, &messages);
        assert_eq!(reference, blake3(&key, &messages));
    }

    #[test]
    fn lanes_equal_blake3_at_every_length_up_to_two_chunks() {
        if Lanes::side_by_side_ways().next().is_none() {
            // Then the lanes are the one-at-a-time reference; nothing more to compare.
            eprintln!("this CPU has no AVX2: the side-by-side path is not exercised here");
        }
        let key: [u8; 32] = message(99, 32).try_into().unwrap();
        for first in (0..=MAX_LEN).step_by(MAX_LANES) {
            // Sixteen lengths in one call (7 is prime to 16: every length is one of them), so
            // every block and chunk boundary (0, 63, 64, 65, 1023, 1024, 1025, 2048 ...)
            // meets lanes of one chunk and of two that end sooner and later.
            let messages: Vec<Vec<u8>> = (0..MAX_LANES)
                .map(|j| message((first + j) as u64, (first + j * 7) % (MAX_LEN + 1)))
                .collect();
            let (ways, reference) = hash_all(&key, &messages);
            assert_eq!(reference, blake3(&key, &messages));
            for fast in ways {
                assert_eq!(fast, reference, "lengths from {first}");
            }
        }
    }

    #[test]
    fn fewer_messages_than_lanes_hash_alone() {
        for n in 0..=MAX_LANES {
            let key: [u8; 32] = message(n as u64 + 1000, 32).try_into().unwrap();
            // Short rows, and rows of one and two chunks, in every position of the group.
            let messages: Vec<Vec<u8>> = (0..n)
                .map(|i| message(i as u64, [140 + i, 1000 + 7 * i, 2048 - i][(i + n) % 3]))
                .collect();
            let (ways, reference) = hash_all(&key, &messages);
            assert_eq!(reference, blake3(&key, &messages));
            for fast in ways {
                assert_eq!(fast, reference, "{n} messages");
            }
        }
    }

    #[test]
    fn hash_each_hashes_every_message_whatever_the_width() {
        let key = [3u8; 32];
        // More than two groups of the widest lanes, the last one short.
        let messages: Vec<Vec<u8>> = (0..37)
            .map(|i| message(i, (i as usize * 61) % 2049))
            .collect();
        let expected = blake3(&key, &messages);
        for lanes in Lanes::side_by_side_ways().chain([Lanes::one_at_a_time()]) {
            let mut out = vec![Hash::default(); messages.len()];
            let write = |i: usize, slot: &mut [u8]| {
                slot[..messages[i].len()].copy_from_slice(&messages[i]);
                messages[i].len()
            };
            lanes.hash_each(&key, write, &mut out);
            assert_eq!(out, expected, "width {}", lanes.width());
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
                lens in proptest::collection::vec(0usize..=MAX_LEN, 0..=2 * MAX_LANES),
                seed in any::<u64>(),
            ) {
                let messages: Vec<Vec<u8>> =
                    lens.iter().enumerate().map(|(i, &l)| message(seed + i as u64, l)).collect();
                let expected = blake3(&key, &messages);
                let (ways, reference) = hash_all(&key, &messages);
                prop_assert_eq!(&reference, &expected);
                for fast in ways {
                    prop_assert_eq!(&fast, &expected);
                }
            }
        }
    }
}
