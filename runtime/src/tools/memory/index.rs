//! The long-term memory index: every entry's embedding in one contiguous
//! matrix per embedding in this process, searched exactly: a first pass
//! over an `i8` copy of the matrix (a quarter of the bytes to read) bounds
//! every row's score, and only the rows that can still be in the top k are
//! scored in `f32` (a heap keeps the top k). The result is a full scan's,
//! exactly (a property test checks it). Recall needs no scan of the store:
//! the index is loaded once and then follows the store through
//! [`Store::memory_since`] (entries written after a watermark, by this
//! process or any other). Figures in docs/benchmarks.md.
//!
//! Vectors of different embeddings (a provider's model, the built-in
//! hashing) live in different spaces and are never compared: a search names
//! the embedding its query vector came from and sees only that space's
//! entries. A key has one entry: written again under another embedding, it
//! moves to that space.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::RwLock;

use serde_json::Value;

use crate::store::{Store, StoreResult};

/// Scores at or below this are not a match.
pub const MIN_SCORE: f32 = 0.05;

/// An embedding space: the embedding's name and its dimension.
type SpaceId = (String, usize);

/// The entries of one embedding space.
///
/// Each vector is kept twice: in `f32` (the exact scores) and quantised to
/// `i8` with a per-row scale (a quarter of the bytes, read by the first
/// pass of a search). See [`Space::search`] for why the result is still
/// exactly a full scan's.
#[derive(Default)]
struct Space {
    dims: usize,
    keys: Vec<String>,
    values: Vec<Value>,
    /// Row-major, `dims` floats a row.
    vecs: Vec<f32>,
    /// Row-major, `dims` bytes a row: `round(v / scale)`.
    q8: Vec<i8>,
    /// Per row: `max |v_i| / 127`.
    scales: Vec<f32>,
    /// Per row: `scale · Σ|q8_i|`, the L1 norm of the quantised row.
    l1: Vec<f32>,
    pos: HashMap<String, usize>,
}

/// A row quantised to `i8`, and its scale.
fn quantise(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return (vec![0; v.len()], 0.0);
    }
    let scale = max / 127.0;
    (v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8).collect(), scale)
}

/// The dot product of two quantised vectors, exact in integers (a row of
/// 1536 bytes sums to at most 1536 · 127², far below `i32::MAX`). Integer
/// addition is associative, so the compiler vectorises the sum.
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(x, y)| i32::from(*x) * i32::from(*y)).sum()
}

/// `scale · Σ|q8_i|`.
fn l1_of(q8: &[i8], scale: f32) -> f32 {
    scale * q8.iter().map(|x| f32::from(x.unsigned_abs())).sum::<f32>()
}

impl Space {
    fn upsert(&mut self, key: &str, value: &Value, embedding: &[f32]) {
        let dims = self.dims;
        let (q8, scale) = quantise(embedding);
        match self.pos.get(key) {
            Some(&i) => {
                if let Some(v) = self.values.get_mut(i) {
                    *v = value.clone();
                }
                if let Some(slot) = self.vecs.get_mut(i * dims..(i + 1) * dims) {
                    slot.copy_from_slice(embedding);
                }
                if let Some(slot) = self.q8.get_mut(i * dims..(i + 1) * dims) {
                    slot.copy_from_slice(&q8);
                }
                if let Some(s) = self.scales.get_mut(i) {
                    *s = scale;
                }
                if let Some(l) = self.l1.get_mut(i) {
                    *l = l1_of(&q8, scale);
                }
            }
            None => {
                self.pos.insert(key.to_string(), self.keys.len());
                self.keys.push(key.to_string());
                self.values.push(value.clone());
                self.vecs.extend_from_slice(embedding);
                self.l1.push(l1_of(&q8, scale));
                self.q8.extend_from_slice(&q8);
                self.scales.push(scale);
            }
        }
    }

    /// Removes a key's row (the last row takes its place).
    fn remove(&mut self, key: &str) {
        let Some(i) = self.pos.remove(key) else { return };
        let last = self.keys.len() - 1;
        self.keys.swap_remove(i);
        self.values.swap_remove(i);
        self.scales.swap_remove(i);
        self.l1.swap_remove(i);
        let dims = self.dims;
        if i != last {
            self.vecs.copy_within(last * dims..(last + 1) * dims, i * dims);
            self.q8.copy_within(last * dims..(last + 1) * dims, i * dims);
            if let Some(moved) = self.keys.get(i) {
                self.pos.insert(moved.clone(), i);
            }
        }
        self.vecs.truncate(last * dims);
        self.q8.truncate(last * dims);
    }

    /// The `k` best rows for `q` as `(score, row)`, best first: exactly
    /// what scoring every row with [`dot`] and keeping the top `k` gives.
    ///
    /// The first pass reads only the `i8` rows and multiplies them with
    /// the query quantised the same way, in integers: with `q = qs·q8 + dq`
    /// and `v = s·r8 + dv` (each `|dq_i| ≤ qs/2`, `|dv_i| ≤ s/2`), the
    /// approximate score `a = qs·s·Σ q8_i·r8_i` differs from the exact one
    /// by at most `s/2 · qs·Σ|q8| + qs/2 · s·Σ|r8| + dims · qs·s/4`, plus a
    /// bound on float rounding. The k-th largest lower bound `a − e` is at
    /// most the k-th largest exact score, so every row of the exact top `k`
    /// has an upper bound `a + e` at least that: only those rows are scored
    /// exactly, in `f32`.
    fn search(&self, q: &[f32], k: usize, exact: Option<usize>) -> Vec<Hit> {
        let dims = self.dims;
        let (qq, qs) = quantise(q);
        let ql1 = l1_of(&qq, qs);
        let approx: Vec<f32> = self.q8.chunks_exact(dims).zip(&self.scales).map(|(r, s)| qs * s * dot_i8(&qq, r) as f32).collect();
        let quarter = dims as f32 * qs / 4.0;
        let err = |row: usize| {
            let (s, l) = (self.scales.get(row).copied().unwrap_or(0.0), self.l1.get(row).copied().unwrap_or(0.0));
            let e = s / 2.0 * ql1 + qs / 2.0 * l + quarter * s;
            // Rounding of the exact `f32` score (`dims` terms of at most
            // `|q_i|·max|v|`) and of the products above.
            e + 2.0 * dims as f32 * f32::EPSILON * (127.0 * s) * (ql1 + dims as f32 * qs) + 1e-6
        };
        // The k-th largest lower bound, through a min-heap of k of them.
        let mut lows: BinaryHeap<std::cmp::Reverse<Ordered>> = BinaryHeap::with_capacity(k + 1);
        for (row, a) in approx.iter().enumerate() {
            let lb = a - err(row);
            if lows.len() < k {
                lows.push(std::cmp::Reverse(Ordered(lb)));
            } else if lows.peek().is_some_and(|w| lb > w.0 .0) {
                lows.pop();
                lows.push(std::cmp::Reverse(Ordered(lb)));
            }
        }
        let floor = if lows.len() < k { f32::NEG_INFINITY } else { lows.peek().map_or(f32::NEG_INFINITY, |w| w.0 .0) };
        let floor = floor.max(MIN_SCORE);
        let mut heap: BinaryHeap<Hit> = BinaryHeap::with_capacity(k + 1);
        for (row, a) in approx.iter().enumerate() {
            let s = if Some(row) == exact {
                2.0
            } else if a + err(row) < floor {
                continue;
            } else {
                match self.vecs.get(row * dims..(row + 1) * dims) {
                    Some(v) => dot(q, v),
                    None => continue,
                }
            };
            if s <= MIN_SCORE {
                continue;
            }
            if heap.len() < k {
                heap.push(Hit(s, row));
            } else if heap.peek().is_some_and(|w| s > w.0) {
                heap.pop();
                heap.push(Hit(s, row));
            }
        }
        let mut hits = heap.into_vec();
        hits.sort();
        hits
    }
}

/// An `f32` with a total order (for a heap).
#[derive(PartialEq)]
struct Ordered(f32);
impl Eq for Ordered {}
impl PartialOrd for Ordered {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ordered {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

#[derive(Default)]
struct Inner {
    /// Largest `updated_at` seen (ms); rows at or after it are re-read.
    watermark: Option<i64>,
    spaces: HashMap<SpaceId, Space>,
    /// The space of each key's entry.
    owner: HashMap<String, SpaceId>,
}

impl Inner {
    fn upsert(&mut self, key: &str, value: &Value, embedding_model: &str, embedding: &[f32]) {
        let id: SpaceId = (embedding_model.to_string(), embedding.len());
        match self.owner.get(key) {
            Some(old) if *old == id => {}
            Some(old) => {
                if let Some(s) = self.spaces.get_mut(old) {
                    s.remove(key);
                }
                self.owner.insert(key.to_string(), id.clone());
            }
            None => {
                self.owner.insert(key.to_string(), id.clone());
            }
        }
        let dims = id.1;
        self.spaces.entry(id).or_insert_with(|| Space { dims, ..Space::default() }).upsert(key, value, embedding);
    }
}

/// A scored hit, ordered by score (then row, for a stable order).
struct Hit(f32, usize);

impl PartialEq for Hit {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Hit {}
impl PartialOrd for Hit {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Hit {
    /// Reversed, so that the heap's top is the worst hit kept.
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0).then_with(|| self.1.cmp(&o.1))
    }
}

/// The dot product of two vectors of one length, in eight independent
/// lanes so that the compiler can keep them in SIMD registers (a single
/// running sum is a chain of dependent additions it may not reorder).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((s, p), q) in acc.iter_mut().zip(x).zip(y) {
            *s += p * q;
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// The index over the store's long-term memory.
#[derive(Default)]
pub struct Index {
    inner: RwLock<Inner>,
}

impl Index {
    /// Number of entries indexed, over every embedding.
    pub fn len(&self) -> usize {
        self.inner.read().map(|i| i.owner.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries indexed under one embedding, of any dimension.
    pub fn len_of(&self, embedding_model: &str) -> usize {
        self.inner.read().map(|i| i.spaces.iter().filter(|(id, _)| id.0 == embedding_model).map(|(_, s)| s.keys.len()).sum()).unwrap_or(0)
    }

    /// Records a write this process made (the store has it already).
    pub fn put(&self, key: &str, value: &Value, embedding_model: &str, embedding: &[f32]) {
        if let Ok(mut i) = self.inner.write() {
            // Before the first refresh the index is empty and a refresh will
            // load everything, this entry included.
            if i.watermark.is_some() {
                i.upsert(key, value, embedding_model, embedding);
            }
        }
    }

    /// Reads what the store has that the index does not (everything the
    /// first time).
    pub async fn refresh(&self, store: &dyn Store) -> StoreResult<()> {
        let since = self.inner.read().ok().and_then(|i| i.watermark);
        let rows = store.memory_since(since.unwrap_or(i64::MIN)).await?;
        if let Ok(mut i) = self.inner.write() {
            for r in &rows {
                i.upsert(&r.key, &r.value, &r.embedding_model, &r.embedding);
            }
            let top = rows.iter().map(|r| r.updated_at_ms).max();
            i.watermark = match (i.watermark, top) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b).or(Some(i64::MIN)),
            };
        }
        Ok(())
    }

    /// The `k` best entries embedded by `embedding_model` for a query: an
    /// exact key match first, then by cosine similarity of `q`
    /// (normalised, of that embedding) to each entry of the same dimension.
    pub fn search(&self, embedding_model: &str, query: &str, q: &[f32], k: usize) -> Vec<(f32, String, Value)> {
        let Ok(i) = self.inner.read() else { return Vec::new() };
        let Some(space) = i.spaces.get(&(embedding_model.to_string(), q.len())) else { return Vec::new() };
        if k == 0 || space.dims == 0 {
            return Vec::new();
        }
        let exact = space.pos.get(query).copied();
        space
            .search(q, k, exact)
            .into_iter()
            .filter_map(|Hit(s, row)| Some((s, space.keys.get(row)?.clone(), space.values.get(row)?.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn dot_is_the_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.25).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }

    #[test]
    fn spaces_never_mix_and_a_key_moves_between_them() {
        let ix = Index::default();
        ix.inner.write().unwrap().watermark = Some(0);
        ix.put("a", &json!(1), "m1", &[1.0, 0.0]);
        ix.put("b", &json!(2), "m1", &[0.0, 1.0]);
        ix.put("c", &json!(3), "m2", &[1.0, 0.0]);
        ix.put("d", &json!(4), "m1", &[1.0, 0.0, 0.0]);
        let keys = |e: &str, q: &[f32]| ix.search(e, "?", q, 10).into_iter().map(|h| h.1).collect::<Vec<_>>();
        assert_eq!(keys("m1", &[1.0, 0.0]), vec!["a"]);
        assert_eq!(keys("m2", &[1.0, 0.0]), vec!["c"]);
        assert_eq!(keys("m1", &[1.0, 0.0, 0.0]), vec!["d"]);
        assert!(keys("m3", &[1.0, 0.0]).is_empty());
        // `a` written again under m2 leaves m1 (and `b` keeps its row).
        ix.put("a", &json!(5), "m2", &[0.6, 0.8]);
        assert_eq!(keys("m1", &[1.0, 0.0]), Vec::<String>::new());
        assert_eq!(keys("m1", &[0.0, 1.0]), vec!["b"]);
        assert_eq!(keys("m2", &[1.0, 0.0]), vec!["c", "a"]);
        assert_eq!(ix.len(), 4);
        assert_eq!(ix.len_of("m1"), 2);
    }
}
