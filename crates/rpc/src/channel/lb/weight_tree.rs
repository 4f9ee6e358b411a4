//! A Fenwick tree of atomic weights: lock-free weighted picks in
//! O(log n) while other threads change weights.

use std::sync::atomic::{AtomicI64, Ordering};

/// Prefix sums of `n` weights, updated with atomic adds. A pick may run
/// while an update is half applied (some nodes added to, others not
/// yet); it then sees slightly wrong sums and may choose a neighbour of
/// the right server, which a weighted pick tolerates, and its result is
/// always a valid index.
#[derive(Debug)]
pub(super) struct WeightTree {
    /// 1-based: `nodes[i]` sums the weights `i - lowbit(i) .. i` (0-based).
    nodes: Box<[AtomicI64]>,
    total: AtomicI64,
}

impl WeightTree {
    /// A tree of `weights`, built in O(n).
    pub(super) fn new(weights: &[i64]) -> WeightTree {
        let n = weights.len();
        let mut sums = vec![0i64; n + 1];
        for i in 1..=n {
            sums[i] += weights[i - 1];
            let parent = i + lowbit(i);
            if parent <= n {
                sums[parent] += sums[i];
            }
        }
        WeightTree {
            nodes: sums.into_iter().map(AtomicI64::new).collect(),
            total: AtomicI64::new(weights.iter().sum()),
        }
    }

    /// Adds `delta` to weight `i`.
    pub(super) fn add(&self, i: usize, delta: i64) {
        // Relaxed: sums are estimates; nothing else is published through them.
        self.total.fetch_add(delta, Ordering::Relaxed);
        let mut i = i + 1;
        while i < self.nodes.len() {
            self.nodes[i].fetch_add(delta, Ordering::Relaxed);
            i += lowbit(i);
        }
    }

    /// The sum of all weights.
    pub(super) fn total(&self) -> i64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The index `i` whose weight covers `point` when the weights are laid
    /// end to end (`sum(0..i) <= point < sum(0..=i)`), clamped to the
    /// valid indices. Needs at least one weight.
    pub(super) fn find(&self, point: i64) -> usize {
        let n = self.nodes.len() - 1;
        let mut pos = 0;
        let mut rest = point;
        let mut step = if n == 0 { 0 } else { 1 << n.ilog2() };
        while step > 0 {
            let next = pos + step;
            if next <= n {
                let w = self.nodes[next].load(Ordering::Relaxed);
                if w <= rest {
                    pos = next;
                    rest -= w;
                }
            }
            step >>= 1;
        }
        pos.min(n - 1)
    }
}

fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(weights: &[i64], point: i64) -> usize {
        let mut sum = 0;
        for (i, w) in weights.iter().enumerate() {
            sum += w;
            if point < sum {
                return i;
            }
        }
        weights.len() - 1
    }

    #[test]
    fn find_matches_a_linear_scan() {
        let mut weights: Vec<i64> = (1..=13).map(|i| i * 7 % 11 + 1).collect();
        let tree = WeightTree::new(&weights);
        tree.add(4, 20);
        weights[4] += 20;
        tree.add(12, -3);
        weights[12] -= 3;
        assert_eq!(tree.total(), weights.iter().sum::<i64>());
        for point in 0..tree.total() {
            assert_eq!(tree.find(point), naive(&weights, point), "{point}");
        }
        assert_eq!(tree.find(tree.total() + 100), 12);
        assert_eq!(WeightTree::new(&[5]).find(3), 0);
    }
}
