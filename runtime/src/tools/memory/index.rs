//! The long-term memory index: every entry's embedding in one contiguous
//! matrix in this process, searched exactly (a dot product per row over
//! normalised vectors, top-k kept in a small heap). At 100k entries of 256
//! dimensions that is 25.6M multiply-adds, a few milliseconds in a release
//! build (figures in docs/benchmarks.md), so recall needs no scan of the
//! store: the index is loaded once and then follows the store through
//! [`Store::memory_since`] (entries written after a watermark, by this
//! process or any other).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::RwLock;

use serde_json::Value;

use super::{cosine, DIMS};
use crate::store::{Store, StoreResult};

/// Scores at or below this are not a match.
pub const MIN_SCORE: f32 = 0.05;

#[derive(Default)]
struct Inner {
    /// Largest `updated_at` seen (ms); rows at or after it are re-read.
    watermark: Option<i64>,
    keys: Vec<String>,
    values: Vec<Value>,
    /// Row-major, `DIMS` floats a row.
    vecs: Vec<f32>,
    pos: HashMap<String, usize>,
}

impl Inner {
    fn upsert(&mut self, key: &str, value: &Value, embedding: &[f32]) {
        let mut row = vec![0f32; DIMS];
        for (d, s) in row.iter_mut().zip(embedding) {
            *d = *s;
        }
        match self.pos.get(key) {
            Some(&i) => {
                if let Some(v) = self.values.get_mut(i) {
                    *v = value.clone();
                }
                if let Some(slot) = self.vecs.get_mut(i * DIMS..(i + 1) * DIMS) {
                    slot.copy_from_slice(&row);
                }
            }
            None => {
                self.pos.insert(key.to_string(), self.keys.len());
                self.keys.push(key.to_string());
                self.values.push(value.clone());
                self.vecs.extend_from_slice(&row);
            }
        }
    }
}

/// A scored hit, ordered by score (then key, for a stable order).
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

/// The index over the store's long-term memory.
#[derive(Default)]
pub struct Index {
    inner: RwLock<Inner>,
}

impl Index {
    /// Number of entries indexed.
    pub fn len(&self) -> usize {
        self.inner.read().map(|i| i.keys.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a write this process made (the store has it already).
    pub fn put(&self, key: &str, value: &Value, embedding: Vec<f32>) {
        if let Ok(mut i) = self.inner.write() {
            // Before the first refresh the index is empty and a refresh will
            // load everything, this entry included.
            if i.watermark.is_some() {
                i.upsert(key, value, &embedding);
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
                i.upsert(&r.key, &r.value, &r.embedding);
            }
            let top = rows.iter().map(|r| r.updated_at_ms).max();
            i.watermark = match (i.watermark, top) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b).or(Some(i64::MIN)),
            };
        }
        Ok(())
    }

    /// The `k` best entries for a query: an exact key match first, then by
    /// cosine similarity of `q` (normalised) to each entry.
    pub fn search(&self, query: &str, q: &[f32], k: usize) -> Vec<(f32, String, Value)> {
        let Ok(i) = self.inner.read() else { return Vec::new() };
        if k == 0 {
            return Vec::new();
        }
        let exact = i.pos.get(query).copied();
        let mut heap: BinaryHeap<Hit> = BinaryHeap::with_capacity(k + 1);
        for (row, v) in i.vecs.chunks_exact(DIMS).enumerate() {
            let s = if Some(row) == exact { 2.0 } else { cosine(q, v) };
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
        hits.into_iter()
            .filter_map(|Hit(s, row)| Some((s, i.keys.get(row)?.clone(), i.values.get(row)?.clone())))
            .collect()
    }
}
