//! Merkle trees in the style of RFC 9162 (Certificate Transparency v2): leaf and node hashes
//! are domain-separated by a prefix byte, the tree over `n` items splits at the largest power
//! of two below `n`, and an inclusion proof is the RFC's audit path. All hashing is keyed by
//! the `merkle node` context of fingerprint v1.

use std::sync::OnceLock;

use crate::hash::{Hash, Keyed, context};
use crate::lanes::Lanes;

/// The prefix byte of a leaf's hashed bytes.
const LEAF: u8 = 0;
/// The prefix byte of an interior node's hashed bytes.
const NODE: u8 = 1;

fn node_key() -> &'static Keyed {
    static KEY: OnceLock<Keyed> = OnceLock::new();
    KEY.get_or_init(|| Keyed::new(context::NODE, &[]))
}

/// The root of the empty tree: `H("")`.
pub fn empty_root() -> Hash {
    node_key().hash(&[])
}

/// The leaf hash of a leaf's bytes: `H(0x00 || data)`.
#[inline]
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = node_key().hasher();
    h.update(&[LEAF]);
    h.update(data);
    h.finalize().into()
}

/// The leaf hashes of `out.len()` leaves, eight at a time where the CPU can: `leaf(i, buf)`
/// writes leaf `i`'s bytes (at most 2047) at the start of `buf` and returns their length.
pub fn leaf_hashes(mut leaf: impl FnMut(usize, &mut [u8]) -> usize, out: &mut [Hash]) {
    Lanes::detect().hash_each(
        node_key().key(),
        |i, slot| {
            slot[0] = LEAF;
            1 + leaf(i, &mut slot[1..])
        },
        out,
    );
}

/// The hash of an interior node: `H(0x01 || left || right)`.
#[inline]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    let len = put_node(left, right, &mut buf);
    node_key().hash(&buf[..len])
}

/// Writes an interior node's hashed bytes, `0x01 || left || right`, into `buf`; returns
/// their length.
#[inline]
fn put_node(left: &Hash, right: &Hash, buf: &mut [u8]) -> usize {
    buf[0] = NODE;
    buf[1..33].copy_from_slice(&left.0);
    buf[33..65].copy_from_slice(&right.0);
    65
}

/// The Merkle tree hash over leaves given by their leaf hashes.
///
/// Computed bottom-up, carrying a level's odd last node up unchanged, which gives the same
/// root as RFC 9162's recursive split at the largest power of two.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => return empty_root(),
        1 => return leaves[0],
        _ => {}
    }
    let mut level: Vec<Hash> = pairs(leaves);
    while level.len() > 1 {
        level = pairs(&level);
    }
    level[0]
}

/// The next level up: a node hash per pair (eight at a time where the CPU can), and an odd
/// last node carried up unchanged.
fn pairs(level: &[Hash]) -> Vec<Hash> {
    let mut up = vec![Hash::default(); level.len().div_ceil(2)];
    let nodes = level.len() / 2;
    Lanes::detect().hash_each(
        node_key().key(),
        |i, slot| put_node(&level[2 * i], &level[2 * i + 1], slot),
        &mut up[..nodes],
    );
    if level.len() % 2 == 1 {
        up[nodes] = level[level.len() - 1];
    }
    up
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The tree hashes of ranges of leaves that proofs ask for: RFC 9162's `MTH(D[start:end])`.
pub trait Subtrees {
    /// The number of leaves.
    fn leaf_count(&self) -> usize;
    /// The tree hash of leaves `start..end`.
    fn subtree(&self, start: usize, end: usize) -> Hash;
}

impl Subtrees for [Hash] {
    fn leaf_count(&self) -> usize {
        self.len()
    }

    fn subtree(&self, start: usize, end: usize) -> Hash {
        root(&self[start..end])
    }
}

/// The audit path of leaf `index`: the sibling hashes from the leaf up to the root.
pub fn audit_path(leaves: &[Hash], index: usize) -> Vec<Hash> {
    audit_path_in(leaves, index, leaves.len())
}

/// The audit path of leaf `index` in the tree of the first `size` leaves of `tree`.
pub fn audit_path_in<T: Subtrees + ?Sized>(tree: &T, index: usize, size: usize) -> Vec<Hash> {
    assert!(
        index < size && size <= tree.leaf_count(),
        "audit_path: index out of range"
    );
    let mut path = Vec::new();
    let (mut lo, mut hi, mut m) = (0usize, size, index);
    // Walk down from the root, remembering siblings; reverse at the end.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if m < k {
            path.push(tree.subtree(lo + k, hi));
            hi = lo + k;
        } else {
            path.push(tree.subtree(lo, lo + k));
            lo += k;
            m -= k;
        }
    }
    path.reverse();
    path
}

/// A growing tree kept whole: its leaves and the root of every complete subtree (of `2^h`
/// leaves starting at a multiple of `2^h`), so that the root, an audit path or a
/// consistency proof of any of its first sizes takes O(log n) hashes (O(log² n) at worst),
/// not n. Appending a leaf hashes the subtrees it completes.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// `levels[h][i]`: the root of leaves `i * 2^h .. (i + 1) * 2^h`; `levels[0]` the leaves.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// A tree of these leaves.
    pub fn of(leaves: &[Hash]) -> Tree {
        let mut t = Tree::default();
        for leaf in leaves {
            t.push(*leaf);
        }
        t
    }

    /// Appends a leaf.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        for h in 0.. {
            if self.levels.len() == h {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[h];
            level.push(node);
            if level.len() % 2 == 1 {
                break;
            }
            node = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
        }
    }

    /// The number of leaves.
    pub fn len(&self) -> usize {
        self.leaves().len()
    }

    /// Whether it has no leaf.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaves, in order.
    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root(&self, size: usize) -> Hash {
        assert!(
            size <= self.leaf_count(),
            "Tree::root: size beyond the tree"
        );
        self.subtree(0, size)
    }
}

impl Subtrees for Tree {
    fn leaf_count(&self) -> usize {
        self.len()
    }

    fn subtree(&self, start: usize, end: usize) -> Hash {
        let n = end - start;
        match n {
            0 => empty_root(),
            _ if n.is_power_of_two() && start.is_multiple_of(n) => {
                self.levels[n.trailing_zeros() as usize][start / n]
            }
            _ => {
                let k = split(n);
                node_hash(
                    &self.subtree(start, start + k),
                    &self.subtree(start + k, end),
                )
            }
        }
    }
}

/// Recomputes the root from a leaf hash, its index, the tree size and its audit path
/// (RFC 9162, section 2.1.3.2). `None` when the path cannot belong to such a tree.
pub fn root_from_path(leaf: &Hash, index: u64, size: u64, path: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return None;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    (snode == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&[i as u8; 5])).collect()
    }

    /// RFC 9162's recursive definition, as the reference for the iterative one.
    fn recursive(items: &[Hash]) -> Hash {
        match items.len() {
            0 => empty_root(),
            1 => items[0],
            n => {
                let k = split(n);
                node_hash(&recursive(&items[..k]), &recursive(&items[k..]))
            }
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn iterative_root_equals_recursive_definition() {
        for n in 0..70 {
            assert_eq!(root(&items(n)), recursive(&items(n)), "n = {n}");
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn every_audit_path_verifies_and_only_for_its_item() {
        for n in 1..40 {
            let items = items(n);
            let r = root(&items);
            for i in 0..n {
                let path = audit_path(&items, i);
                assert_eq!(
                    root_from_path(&items[i], i as u64, n as u64, &path),
                    Some(r),
                    "n = {n}, i = {i}"
                );
                let other = Hash([0xEE; 32]);
                assert_ne!(root_from_path(&other, i as u64, n as u64, &path), Some(r));
                if n > 1 {
                    let wrong = (i + 1) % n;
                    assert_ne!(
                        root_from_path(&items[i], wrong as u64, n as u64, &path),
                        Some(r),
                        "n = {n}, i = {i} accepted at index {wrong}"
                    );
                }
            }
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_kept_tree_gives_every_root_and_path_of_its_sizes() {
        let all = items(70);
        let mut tree = Tree::default();
        assert_eq!(tree.root(0), empty_root());
        for (n, leaf) in all.iter().enumerate() {
            tree.push(*leaf);
            let size = n + 1;
            assert_eq!(tree.leaves(), &all[..size]);
            for s in 0..=size {
                assert_eq!(tree.root(s), recursive(&all[..s]), "size {s} of {size}");
            }
            for i in 0..size {
                assert_eq!(
                    audit_path_in(&tree, i, size),
                    audit_path(&all[..size], i),
                    "leaf {i} of {size}"
                );
            }
        }
        assert_eq!(Tree::of(&all).root(70), root(&all));
        for start in 0..20 {
            for end in start..20 {
                assert_eq!(tree.subtree(start, end), recursive(&all[start..end]));
            }
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn leaf_and_node_are_separated() {
        let a = Hash([1; 32]);
        let both = [a.0, a.0].concat();
        assert_ne!(leaf_hash(&a.0), empty_root());
        assert_ne!(node_hash(&a, &a), leaf_hash(&both));
    }
}
