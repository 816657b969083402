//! One venue+instrument L2 book kept in sync with the exchange's update ids: the rules of `domain/book.py`
//! (`SyncedBook`), which is the reference; differential tests compare the two after every message.
//!
//! * Before a snapshot, and while out of sync, deltas are buffered (oldest dropped past `max_buffered`).
//! * A snapshot (lastUpdateId L) replaces the levels, then the buffer is replayed under the rules below.
//! * First delta after a snapshot. Spot: drop `u <= L`, the first applied has `U <= L + 1 <= u`. Futures
//!   (deltas carrying `pu`): drop `u < L`, the first applied has `U <= L <= u`.
//! * Then spot needs `U == previous u + 1`, futures `pu == previous u`; `u <= previous u` is a stale duplicate.
//! * A gap, a delta that would cross or lock the book, a non-positive price or a negative quantity (delta or
//!   snapshot) or a crossed snapshot puts the book out of sync; the offending delta is not applied but
//!   buffered, and the next snapshot rebuilds the book. A snapshot an in-sync book already holds is stale.

use std::collections::{BTreeMap, VecDeque};

use crate::amount::Amount;

pub type Level = (Amount, Amount);

/// Deltas kept while waiting for a snapshot (as `domain.book.MAX_BUFFERED`).
pub const MAX_BUFFERED: usize = 10_000;

#[derive(Clone, Debug, PartialEq)]
pub struct Delta {
    pub first_update_id: i64,
    pub final_update_id: i64,
    /// Futures' `pu`; None for spot.
    pub previous_final_update_id: Option<i64>,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    pub event_time_ns: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub last_update_id: i64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    pub event_time_ns: i64,
}

/// One side: price -> quantity by value; an update at an equal price keeps the first price's written form.
#[derive(Clone, Debug, Default)]
pub struct BookSide {
    pub is_bid: bool,
    pub levels: BTreeMap<Amount, Amount>,
}

impl BookSide {
    pub fn new(is_bid: bool) -> Self {
        BookSide {
            is_bid,
            levels: BTreeMap::new(),
        }
    }

    /// Set a level; quantity 0 removes it.
    pub fn set_level(&mut self, price: Amount, quantity: Amount) {
        if quantity.is_zero() {
            self.levels.remove(&price);
        } else {
            self.levels.insert(price, quantity);
        }
    }

    pub fn replace(&mut self, new_levels: &[Level]) {
        self.levels.clear();
        for &(price, quantity) in new_levels {
            self.set_level(price, quantity);
        }
    }

    /// Every level, best first (bids descending, asks ascending).
    pub fn walk(&self) -> Box<dyn Iterator<Item = Level> + '_> {
        let levels = self.levels.iter().map(|(p, q)| (*p, *q));
        if self.is_bid {
            Box::new(levels.rev())
        } else {
            Box::new(levels)
        }
    }

    pub fn best(&self) -> Option<Amount> {
        let best = if self.is_bid {
            self.levels.last_key_value()
        } else {
            self.levels.first_key_value()
        };
        best.map(|(p, _)| *p)
    }

    pub fn best_level(&self) -> Option<Level> {
        let best = if self.is_bid {
            self.levels.last_key_value()
        } else {
            self.levels.first_key_value()
        };
        best.map(|(p, q)| (*p, *q))
    }

    pub fn top(&self, n: usize) -> Vec<Level> {
        self.walk().take(n).collect()
    }

    pub fn quantity_at(&self, price: Amount) -> Amount {
        self.levels.get(&price).copied().unwrap_or(Amount::ZERO)
    }

    fn better(&self, a: Amount, b: Amount) -> bool {
        if self.is_bid {
            a > b
        } else {
            a < b
        }
    }

    /// Best price this side would have after `updates`, without changing it.
    pub fn best_after(&self, updates: &[Level]) -> Option<Amount> {
        // The last update of a price wins; its quantity decides whether the price stays. Sorted by (price,
        // position) once, so a delta of n levels costs n log n comparisons, not n^2.
        let mut last: Vec<(Amount, usize, Amount)> = updates
            .iter()
            .enumerate()
            .map(|(i, &(price, quantity))| (price, i, quantity))
            .collect();
        last.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        last.dedup_by(|later, earlier| {
            // `dedup_by` keeps the first of a run: move the later update's quantity into it.
            if later.0 == earlier.0 {
                earlier.2 = later.2;
                true
            } else {
                false
            }
        });
        let updated = |price: Amount| last.binary_search_by(|l| l.0.cmp(&price)).is_ok();
        let mut best: Option<Amount> = None;
        for &(price, _, quantity) in &last {
            if quantity.is_positive() && best.is_none_or(|b| self.better(price, b)) {
                best = Some(price);
            }
        }
        for (price, _) in self.walk() {
            if updated(price) {
                continue; // removed, or already counted among the updates
            }
            if best.is_none_or(|b| self.better(price, b)) {
                best = Some(price);
            }
            break;
        }
        best
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// An update id is missing (or the snapshot cannot be bridged to the buffered deltas).
    Gap = 1,
    /// The delta would cross or lock the book, or the snapshot is crossed.
    Crossed = 2,
    /// A non-positive price or a negative quantity.
    Invalid = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Applied = 0,
    /// Kept until the next snapshot (no snapshot yet, or out of sync).
    Buffered = 1,
    /// Already covered by the snapshot or a previous delta: dropped.
    Stale = 2,
    /// This event put the book out of sync (once per loss of sync).
    OutOfSync = 3,
}

/// What `apply` did. No reason text: the decider that reports a resync writes it (in Python).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    /// OutOfSync: the update id the book needed next.
    pub expected_update_id: i64,
    /// OutOfSync: the first update id it got instead (a bad snapshot's lastUpdateId).
    pub received_update_id: i64,
    /// Applied snapshot: buffered deltas applied on top of it (also on a failed replay: those before the gap).
    pub replayed: u32,
    pub cause: Option<Cause>,
    /// OutOfSync while replaying the buffer after a snapshot.
    pub during_replay: bool,
}

impl Outcome {
    const fn of(status: Status) -> Self {
        Outcome {
            status,
            expected_update_id: 0,
            received_update_id: 0,
            replayed: 0,
            cause: None,
            during_replay: false,
        }
    }
    pub const APPLIED: Outcome = Outcome::of(Status::Applied);
    pub const BUFFERED: Outcome = Outcome::of(Status::Buffered);
    pub const STALE: Outcome = Outcome::of(Status::Stale);

    fn out_of_sync(cause: Cause, expected: i64, received: i64) -> Self {
        Outcome {
            cause: Some(cause),
            expected_update_id: expected,
            received_update_id: received,
            ..Outcome::of(Status::OutOfSync)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Apply,
    Stale,
    /// Out of sync already: waits for a snapshot.
    Ignore,
    Resync(Cause, i64),
}

#[derive(Clone, Debug)]
pub struct SyncedBook {
    pub bids: BookSide,
    pub asks: BookSide,
    /// Final update id of the last applied snapshot or delta.
    pub applied_update_id: i64,
    /// Event time of the snapshot or delta whose apply last moved `applied_update_id` (-1: never).
    pub applied_time_ns: i64,
    pub awaiting_first_delta: bool,
    pub in_sync: bool,
    pub has_snapshot: bool,
    pub deltas_applied: u64,
    pub max_buffered: usize,
    pub buffer: VecDeque<Delta>,
    pub buffer_overflows: u64,
}

impl Default for SyncedBook {
    fn default() -> Self {
        SyncedBook {
            bids: BookSide::new(true),
            asks: BookSide::new(false),
            applied_update_id: 0,
            applied_time_ns: -1,
            awaiting_first_delta: true,
            in_sync: false,
            has_snapshot: false,
            deltas_applied: 0,
            max_buffered: MAX_BUFFERED,
            buffer: VecDeque::new(),
            buffer_overflows: 0,
        }
    }
}

impl SyncedBook {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn side(&self, is_bid: bool) -> &BookSide {
        if is_bid {
            &self.bids
        } else {
            &self.asks
        }
    }

    pub fn is_crossed(&self) -> bool {
        matches!((self.bids.best(), self.asks.best()), (Some(b), Some(a)) if b >= a)
    }

    /// Whether a ticker shows a later state than this book has applied: by the exchange's update id when the
    /// ticker carries one, else by event time (`SyncedBook.behind`).
    pub fn behind(&self, quote_update_id: Option<i64>, quote_time_ns: i64) -> bool {
        match quote_update_id {
            Some(id) => id > self.applied_update_id,
            None => quote_time_ns > self.applied_time_ns,
        }
    }

    /// Stop applying deltas until the next snapshot (a reported resync or disconnect).
    pub fn mark_out_of_sync(&mut self) {
        self.in_sync = false;
    }

    pub fn apply_delta(&mut self, delta: Delta) -> Outcome {
        let before = self.applied_update_id;
        let time = delta.event_time_ns;
        let outcome = self.delta(delta);
        if self.applied_update_id != before {
            self.applied_time_ns = time;
        }
        outcome
    }

    pub fn apply_snapshot(&mut self, snapshot: &Snapshot) -> Outcome {
        let before = self.applied_update_id;
        let outcome = self.snapshot(snapshot);
        if self.applied_update_id != before {
            self.applied_time_ns = snapshot.event_time_ns;
        }
        outcome
    }

    /// What `apply_delta` would return, without changing the book.
    pub fn check_delta(&self, delta: &Delta) -> Outcome {
        if !self.in_sync {
            return Outcome::BUFFERED;
        }
        outcome(self.verdict(delta), delta)
    }

    /// What `apply_snapshot` would return, without changing the book (a snapshot is rare: a scratch copy).
    pub fn check_snapshot(&self, snapshot: &Snapshot) -> Outcome {
        let mut scratch = SyncedBook {
            applied_update_id: self.applied_update_id,
            in_sync: self.in_sync,
            buffer: self.buffer.clone(),
            ..SyncedBook::default()
        };
        scratch.snapshot(snapshot)
    }

    fn buffer(&mut self, delta: Delta) {
        if self.buffer.len() >= self.max_buffered {
            self.buffer.pop_front();
            self.buffer_overflows += 1;
        }
        self.buffer.push_back(delta);
    }

    fn delta(&mut self, delta: Delta) -> Outcome {
        if !self.in_sync {
            self.buffer(delta);
            return Outcome::BUFFERED;
        }
        match self.verdict(&delta) {
            Verdict::Apply => {
                self.apply_checked(&delta);
                Outcome::APPLIED
            }
            Verdict::Stale | Verdict::Ignore => Outcome::STALE,
            resync => {
                self.in_sync = false;
                let result = outcome(resync, &delta);
                self.buffer(delta);
                result
            }
        }
    }

    fn snapshot(&mut self, snapshot: &Snapshot) -> Outcome {
        if let Some(cause) = snapshot_problem(snapshot) {
            self.in_sync = false;
            let last = snapshot.last_update_id;
            return Outcome::out_of_sync(cause, last, last);
        }
        if self.in_sync && snapshot.last_update_id <= self.applied_update_id {
            return Outcome::STALE;
        }
        self.bids.replace(&snapshot.bids);
        self.asks.replace(&snapshot.asks);
        self.applied_update_id = snapshot.last_update_id;
        self.awaiting_first_delta = true;
        self.in_sync = true;
        self.has_snapshot = true;
        let mut buffered = std::mem::take(&mut self.buffer);
        let mut replayed = 0u32;
        while let Some(delta) = buffered.pop_front() {
            match self.verdict(&delta) {
                Verdict::Apply => {
                    self.apply_checked(&delta);
                    replayed += 1;
                }
                Verdict::Stale | Verdict::Ignore => {}
                resync => {
                    self.in_sync = false;
                    let mut result = outcome(resync, &delta);
                    result.replayed = replayed;
                    result.during_replay = true;
                    buffered.push_front(delta);
                    self.buffer = buffered;
                    return result;
                }
            }
        }
        Outcome {
            replayed,
            ..Outcome::APPLIED
        }
    }

    fn apply_checked(&mut self, delta: &Delta) {
        for &(price, quantity) in &delta.bids {
            self.bids.set_level(price, quantity);
        }
        for &(price, quantity) in &delta.asks {
            self.asks.set_level(price, quantity);
        }
        self.applied_update_id = delta.final_update_id;
        self.awaiting_first_delta = false;
        self.deltas_applied += 1;
    }

    /// The id rules: None when `delta` is next in sequence.
    fn sequence(&self, delta: &Delta) -> Option<Verdict> {
        let last = self.applied_update_id;
        let (first, last_of_delta) = (delta.first_update_id, delta.final_update_id);
        if self.awaiting_first_delta {
            if delta.previous_final_update_id.is_some() {
                // futures: U <= L <= u
                if last_of_delta < last {
                    return Some(Verdict::Stale);
                }
                if first <= last && last <= last_of_delta {
                    return None;
                }
                return Some(Verdict::Resync(Cause::Gap, last));
            }
            // spot: U <= L + 1 <= u
            if last_of_delta <= last {
                return Some(Verdict::Stale);
            }
            if first <= last + 1 {
                return None;
            }
            return Some(Verdict::Resync(Cause::Gap, last + 1));
        }
        if last_of_delta <= last {
            return Some(Verdict::Stale);
        }
        match delta.previous_final_update_id {
            Some(previous) if previous == last => None,
            Some(_) => Some(Verdict::Resync(Cause::Gap, last)),
            None if first == last + 1 => None,
            None => Some(Verdict::Resync(Cause::Gap, last + 1)),
        }
    }

    fn verdict(&self, delta: &Delta) -> Verdict {
        if !self.in_sync {
            return Verdict::Ignore;
        }
        if let Some(verdict) = self.sequence(delta) {
            return verdict;
        }
        let last = self.applied_update_id;
        // Bounds on the new best prices: removals only move a best price away from the other side.
        let mut bid_bound = self.bids.best();
        for &(price, quantity) in &delta.bids {
            if !price.is_positive() || quantity.is_negative() {
                return Verdict::Resync(Cause::Invalid, last);
            }
            if !quantity.is_zero() && bid_bound.is_none_or(|b| price > b) {
                bid_bound = Some(price);
            }
        }
        let mut ask_bound = self.asks.best();
        for &(price, quantity) in &delta.asks {
            if !price.is_positive() || quantity.is_negative() {
                return Verdict::Resync(Cause::Invalid, last);
            }
            if !quantity.is_zero() && ask_bound.is_none_or(|a| price < a) {
                ask_bound = Some(price);
            }
        }
        match (bid_bound, ask_bound) {
            (Some(b), Some(a)) if b >= a => {}
            _ => return Verdict::Apply, // cannot cross, whatever the removals
        }
        let bid = if delta.bids.is_empty() {
            self.bids.best()
        } else {
            self.bids.best_after(&delta.bids)
        };
        let ask = if delta.asks.is_empty() {
            self.asks.best()
        } else {
            self.asks.best_after(&delta.asks)
        };
        match (bid, ask) {
            (Some(b), Some(a)) if b >= a => Verdict::Resync(Cause::Crossed, last),
            _ => Verdict::Apply,
        }
    }
}

fn outcome(verdict: Verdict, delta: &Delta) -> Outcome {
    match verdict {
        Verdict::Apply => Outcome::APPLIED,
        Verdict::Stale => Outcome::STALE,
        Verdict::Ignore => Outcome::BUFFERED,
        Verdict::Resync(cause, expected) => {
            Outcome::out_of_sync(cause, expected, delta.first_update_id)
        }
    }
}

fn invalid(levels: &[Level]) -> bool {
    levels
        .iter()
        .any(|(price, quantity)| !price.is_positive() || quantity.is_negative())
}

fn snapshot_problem(snapshot: &Snapshot) -> Option<Cause> {
    if invalid(&snapshot.bids) || invalid(&snapshot.asks) {
        return Some(Cause::Invalid);
    }
    let best_bid = snapshot
        .bids
        .iter()
        .filter(|l| l.1.is_positive())
        .map(|l| l.0)
        .max();
    let best_ask = snapshot
        .asks
        .iter()
        .filter(|l| l.1.is_positive())
        .map(|l| l.0)
        .min();
    match (best_bid, best_ask) {
        (Some(b), Some(a)) if b >= a => Some(Cause::Crossed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn a(m: i64) -> Amount {
        Amount::new(m, 0)
    }

    fn lv(levels: &[(i64, i64)]) -> Vec<Level> {
        levels.iter().map(|&(p, q)| (a(p), a(q))).collect()
    }

    fn delta(
        first: i64,
        last: i64,
        pu: Option<i64>,
        bids: &[(i64, i64)],
        asks: &[(i64, i64)],
    ) -> Delta {
        Delta {
            first_update_id: first,
            final_update_id: last,
            previous_final_update_id: pu,
            bids: lv(bids),
            asks: lv(asks),
            event_time_ns: last,
        }
    }

    fn snapshot(last: i64) -> Snapshot {
        Snapshot {
            last_update_id: last,
            bids: lv(&[(99, 1), (98, 2)]),
            asks: lv(&[(101, 1)]),
            event_time_ns: 0,
        }
    }

    #[test]
    fn spot_rules_by_hand() {
        let mut book = SyncedBook::new();
        assert_eq!(
            book.apply_delta(delta(95, 99, None, &[], &[])).status,
            Status::Buffered
        );
        assert_eq!(
            book.apply_delta(delta(100, 103, None, &[(99, 5)], &[]))
                .status,
            Status::Buffered
        );
        let out = book.apply_snapshot(&snapshot(101)); // 95..99 dropped (u <= L), 100..103 straddles 102
        assert_eq!((out.status, out.replayed), (Status::Applied, 1));
        assert_eq!(book.bids.quantity_at(a(99)), a(5));
        assert_eq!(
            book.apply_delta(delta(103, 103, None, &[], &[])).status,
            Status::Stale
        );
        let gap = book.apply_delta(delta(105, 106, None, &[], &[]));
        assert_eq!(
            (
                gap.status,
                gap.cause,
                gap.expected_update_id,
                gap.received_update_id
            ),
            (Status::OutOfSync, Some(Cause::Gap), 104, 105)
        );
        assert_eq!(
            book.apply_delta(delta(104, 104, None, &[], &[])).status,
            Status::Buffered
        );
    }

    #[test]
    fn futures_rules_and_crossing_by_hand() {
        let mut book = SyncedBook::new();
        book.apply_snapshot(&snapshot(100));
        assert_eq!(
            book.apply_delta(delta(90, 99, Some(89), &[], &[])).status,
            Status::Stale
        ); // u < L
        assert_eq!(
            book.apply_delta(delta(95, 105, Some(94), &[], &[])).status,
            Status::Applied
        ); // U <= L <= u
        assert_eq!(
            book.apply_delta(delta(110, 112, Some(105), &[], &[]))
                .status,
            Status::Applied
        ); // pu == u
        let crossing = book.apply_delta(delta(113, 113, Some(112), &[(101, 1)], &[]));
        assert_eq!(
            (crossing.status, crossing.cause),
            (Status::OutOfSync, Some(Cause::Crossed))
        );
        assert_eq!(
            book.bids.best(),
            Some(a(99)),
            "the crossing delta is not applied"
        );
        // Removing the best ask while adding a bid below the next ask is fine.
        let mut book = SyncedBook::new();
        book.apply_snapshot(&Snapshot {
            asks: lv(&[(101, 1), (103, 1)]),
            ..snapshot(1)
        });
        assert_eq!(
            book.apply_delta(delta(2, 2, None, &[(102, 1)], &[(101, 0)]))
                .status,
            Status::Applied
        );
        assert_eq!(
            book.apply_delta(delta(3, 3, None, &[(0, 1)], &[])).cause,
            Some(Cause::Invalid)
        );
    }

    proptest! {
        /// In-sync books are never crossed, and match a naive map model of the applied updates.
        #[test]
        fn never_crossed_and_matches_a_naive_model(
            updates in prop::collection::vec(
                (prop::collection::vec((90i64..110, 0i64..3), 0..4), prop::collection::vec((90i64..110, 0i64..3), 0..4)),
                1..60,
            )
        ) {
            let mut book = SyncedBook::new();
            book.apply_snapshot(&Snapshot { last_update_id: 0, bids: vec![], asks: vec![], event_time_ns: 0 });
            let mut model: (BTreeMap<i64, i64>, BTreeMap<i64, i64>) = Default::default();
            for (i, (bids, asks)) in updates.iter().enumerate() {
                let id = i as i64 + 1;
                let out = book.apply_delta(delta(id, id, None, bids, asks));
                if !book.in_sync {
                    prop_assert_eq!(out.status, Status::OutOfSync);
                    break;
                }
                prop_assert_eq!(out.status, Status::Applied);
                for (side, levels) in [(&mut model.0, bids), (&mut model.1, asks)] {
                    for &(p, q) in levels {
                        if q == 0 { side.remove(&p); } else { side.insert(p, q); }
                    }
                }
                prop_assert!(!book.is_crossed());
                let bids: Vec<(i64, i64)> = book.bids.walk().map(|(p, q)| (p.mantissa, q.mantissa)).collect();
                let want: Vec<(i64, i64)> = model.0.iter().rev().map(|(p, q)| (*p, *q)).collect();
                prop_assert_eq!(bids, want);
                let asks: Vec<(i64, i64)> = book.asks.walk().map(|(p, q)| (p.mantissa, q.mantissa)).collect();
                let want: Vec<(i64, i64)> = model.1.iter().map(|(p, q)| (*p, *q)).collect();
                prop_assert_eq!(asks, want);
            }
        }
    }
}
