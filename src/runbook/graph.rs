//! The steps' dependency graph (`needs`), built once per check: which steps
//! each step depends on, directly or not, and the first cycle. Work is
//! linear in steps and edges (the ancestor sets are bitsets, one word per
//! 64 steps), so a long chain of `needs` costs milliseconds, not minutes,
//! and no walk recurses as deep as the chain is long.

use std::collections::HashMap;

use super::model::Runbook;

pub struct Graph<'a> {
    ids: Vec<&'a str>,
    index: HashMap<&'a str, usize>,
    /// `needs` as indices; unknown names (reported elsewhere) left out.
    needs: Vec<Vec<usize>>,
    /// Bit `j` of `ancestors[i]`: step `i` depends on step `j`.
    ancestors: Vec<Vec<u64>>,
}

impl<'a> Graph<'a> {
    pub fn new(rb: &'a Runbook) -> Graph<'a> {
        let mut index = HashMap::with_capacity(rb.steps.len());
        let mut ids = Vec::with_capacity(rb.steps.len());
        for s in &rb.steps {
            // The first step of a duplicated id is the one that counts.
            index.entry(s.id.as_str()).or_insert(ids.len());
            ids.push(s.id.as_str());
        }
        let needs: Vec<Vec<usize>> = rb
            .steps
            .iter()
            .map(|s| {
                s.needs
                    .iter()
                    .filter_map(|n| index.get(n.as_str()).copied())
                    .collect()
            })
            .collect();
        let words = ids.len().div_ceil(64);
        let mut g = Graph {
            ids,
            index,
            needs,
            ancestors: vec![vec![0; words]; rb.steps.len()],
        };
        g.fill_ancestors();
        g
    }

    /// In dependency order (each step after what it needs), the union of
    /// the needs' own ancestors. Steps on a cycle never become ready and
    /// keep what was known when the order stopped.
    fn fill_ancestors(&mut self) {
        let n = self.ids.len();
        let mut waiting: Vec<usize> = self.needs.iter().map(Vec::len).collect();
        let mut needed_by: Vec<Vec<usize>> = vec![vec![]; n];
        for (i, ns) in self.needs.iter().enumerate() {
            for &d in ns {
                needed_by[d].push(i);
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        while let Some(i) = ready.pop() {
            for k in 0..self.needs[i].len() {
                let d = self.needs[i][k];
                if d == i {
                    continue;
                }
                let (mine, theirs) = pair(&mut self.ancestors, i, d);
                for (m, t) in mine.iter_mut().zip(theirs) {
                    *m |= *t;
                }
                mine[d / 64] |= 1 << (d % 64);
            }
            for &j in &needed_by[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push(j);
                }
            }
        }
    }

    /// Whether `step` depends on `on`, directly or not.
    pub fn depends_on(&self, step: &str, on: &str) -> bool {
        match (self.index.get(step), self.index.get(on)) {
            (Some(&i), Some(&j)) => self.ancestors[i][j / 64] & (1 << (j % 64)) != 0,
            _ => false,
        }
    }

    /// Every step `step` depends on, directly or not, in runbook order.
    pub fn ancestors(&self, step: &str) -> Vec<&'a str> {
        let Some(&i) = self.index.get(step) else {
            return vec![];
        };
        (0..self.ids.len())
            .filter(|j| self.ancestors[i][j / 64] & (1 << (j % 64)) != 0)
            .map(|j| self.ids[j])
            .collect()
    }

    /// The first dependency cycle, as `a -> b -> a`, searching from each
    /// step in runbook order and each step's needs in order. A step that
    /// needs itself is left out: it is reported on its own.
    pub fn cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let n = self.ids.len();
        let mut mark = vec![Mark::New; n];
        for root in 0..n {
            if mark[root] != Mark::New || self.index[self.ids[root]] != root {
                continue;
            }
            // (step, next of its needs to look at): the recursion, unrolled.
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            mark[root] = Mark::Active;
            while let Some(&mut (i, ref mut next)) = stack.last_mut() {
                let Some(&d) = self.needs[i].get(*next) else {
                    mark[i] = Mark::Done;
                    stack.pop();
                    continue;
                };
                *next += 1;
                if d == i {
                    continue;
                }
                match mark[d] {
                    Mark::Active => {
                        let start = stack.iter().position(|(s, _)| *s == d).unwrap_or(0);
                        let mut cyc: Vec<String> = stack[start..]
                            .iter()
                            .map(|(s, _)| self.ids[*s].to_string())
                            .collect();
                        cyc.push(self.ids[d].to_string());
                        return Some(cyc);
                    }
                    Mark::New => {
                        mark[d] = Mark::Active;
                        stack.push((d, 0));
                    }
                    Mark::Done => {}
                }
            }
        }
        None
    }
}

/// `v[i]` mutably and `v[j]` shared, `i != j`.
fn pair<T>(v: &mut [T], i: usize, j: usize) -> (&mut T, &T) {
    if i < j {
        let (a, b) = v.split_at_mut(j);
        (&mut a[i], &b[0])
    } else {
        let (a, b) = v.split_at_mut(i);
        (&mut b[0], &a[j])
    }
}
