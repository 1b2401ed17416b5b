//! A project's snapshots or backups: kept in creation order, found by id or
//! by volume without a scan, and swept out once their deletion is over.
//! A fleet of ten thousand volumes makes every request touch the shelf, so
//! nothing here walks all of it but a listing without a volume filter.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio::time::Instant;

use super::state::Resource;

pub struct Shelf<R> {
    /// By a sequence number that grows with every push: creation order.
    items: BTreeMap<u64, R>,
    by_id: HashMap<String, u64>,
    by_volume: HashMap<String, BTreeSet<u64>>,
    next: u64,
    /// Those being deleted, with when it began.
    deleting: Vec<(Instant, u64)>,
}

impl<R> Default for Shelf<R> {
    fn default() -> Self {
        Self {
            items: BTreeMap::new(),
            by_id: HashMap::new(),
            by_volume: HashMap::new(),
            next: 0,
            deleting: Vec::new(),
        }
    }
}

impl<R: Resource> Shelf<R> {
    pub fn push(&mut self, r: R) {
        let seq = self.next;
        self.next += 1;
        self.by_id.insert(r.id().to_string(), seq);
        self.by_volume
            .entry(r.volume_id().to_string())
            .or_default()
            .insert(seq);
        self.items.insert(seq, r);
    }

    pub fn get(&self, id: &str) -> Option<&R> {
        self.by_id.get(id).and_then(|seq| self.items.get(seq))
    }

    /// All of them, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &R> {
        self.items.values()
    }

    /// Those of one volume, oldest first.
    pub fn of_volume<'a>(&'a self, volume_id: &str) -> impl Iterator<Item = &'a R> {
        self.by_volume
            .get(volume_id)
            .into_iter()
            .flatten()
            .filter_map(|seq| self.items.get(seq))
    }

    /// Marks `id` as being deleted since `now`.
    pub fn start_deleting(&mut self, id: &str, now: Instant) {
        let Some(&seq) = self.by_id.get(id) else {
            return;
        };
        if let Some(r) = self.items.get_mut(&seq) {
            *r.deleting_since() = Some(now);
            self.deleting.push((now, seq));
        }
    }

    /// Removes those whose deletion began at a time `gone` accepts, noting
    /// their ids in `removed`.
    pub fn sweep(&mut self, gone: impl Fn(Instant) -> bool, removed: &mut Vec<String>) {
        let mut done = Vec::new();
        self.deleting.retain(|&(since, seq)| {
            let over = gone(since);
            if over {
                done.push(seq);
            }
            !over
        });
        for seq in done {
            if let Some(r) = self.items.remove(&seq) {
                self.by_id.remove(r.id());
                if let Some(set) = self.by_volume.get_mut(r.volume_id()) {
                    set.remove(&seq);
                    if set.is_empty() {
                        self.by_volume.remove(r.volume_id());
                    }
                }
                removed.push(r.id().to_string());
            }
        }
    }
}
