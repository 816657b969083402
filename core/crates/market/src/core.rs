//! The session's market side: input rows in engine order, and per (venue, instrument) key the market view,
//! the L2 book under the sync rules (the view's book, as `ReferenceMarketView`), and optionally the simulated
//! venue's own view of the book. `step` applies one whole message; nothing here decides anything.

use std::collections::VecDeque;

use crate::book::{Delta, Level, Outcome, Snapshot, SyncedBook};
use crate::rows::{
    Rows, AGGRESSOR_BUY, KIND_DELTA, KIND_QUOTE, KIND_SNAPSHOT, KIND_TRADE, SIDE_BID,
};
use crate::venue::VenueBook;
use crate::view::{MarketView, Quote, Trade};

#[derive(Clone, Debug, Default)]
pub struct Slot {
    pub venue: String,
    pub instrument: String,
    pub view: MarketView,
    pub book: Option<SyncedBook>,
    /// What applying the key's last book event did.
    pub outcome: Option<Outcome>,
    /// The simulated venue's view of this key (only for keys a venue trades, `track_venue`).
    pub venue_book: Option<VenueBook>,
}

/// One applied message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Message {
    /// Global row index of its first row, and one past its last.
    pub start: u64,
    pub end: u64,
    pub key: u32,
    pub kind: i8,
    pub event_time_ns: i64,
    /// Book messages: what the view's book did with it.
    pub outcome: Option<Outcome>,
    /// The venue's matchable liquidity may have changed (a tracked key's book applied or lost sync, or
    /// an accepted ticker).
    pub venue_changed: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Core {
    pub slots: Vec<Slot>,
    batches: VecDeque<Rows>,
    /// Global row index of the front batch's first row.
    base: u64,
    /// Next row within the front batch.
    cursor: usize,
    pub messages: u64,
}

impl Core {
    pub fn new() -> Self {
        Self::default()
    }

    /// A core continuing at row `position` (restored from a snapshot).
    pub fn restored(position: u64, messages: u64) -> Self {
        Core {
            base: position,
            messages,
            ..Core::default()
        }
    }

    /// The key of (venue, instrument), registered on first use.
    pub fn add_key(&mut self, venue: &str, instrument: &str) -> u32 {
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| s.venue == venue && s.instrument == instrument)
        {
            return i as u32;
        }
        self.slots.push(Slot {
            venue: venue.to_owned(),
            instrument: instrument.to_owned(),
            ..Slot::default()
        });
        (self.slots.len() - 1) as u32
    }

    pub fn slot(&self, key: u32) -> Option<&Slot> {
        self.slots.get(key as usize)
    }

    /// Keep the simulated venue's view of `key` from now on.
    pub fn track_venue(&mut self, key: u32) -> Result<(), String> {
        let slot = self
            .slots
            .get_mut(key as usize)
            .ok_or_else(|| format!("unknown key {key}"))?;
        slot.venue_book.get_or_insert_with(VenueBook::default);
        Ok(())
    }

    /// Queue a batch of rows after those already queued.
    pub fn append(&mut self, rows: Rows) -> Result<(), String> {
        rows.validate()?;
        if let Some(row) = rows
            .key
            .iter()
            .position(|k| *k as usize >= self.slots.len())
        {
            return Err(format!(
                "row {row}: key {} was never registered",
                rows.key[row]
            ));
        }
        if !rows.is_empty() {
            self.batches.push_back(rows);
        }
        Ok(())
    }

    /// Global index of the next row to apply (= rows applied so far).
    pub fn position(&self) -> u64 {
        self.base + self.cursor as u64
    }

    /// Rows queued and not yet applied.
    pub fn pending_rows(&self) -> u64 {
        self.batches.iter().map(|b| b.len() as u64).sum::<u64>() - self.cursor as u64
    }

    /// The next message's (kind, key, event time), without applying it.
    pub fn peek(&self) -> Option<(i8, u32, i64)> {
        let rows = self.batches.front()?;
        let r = self.cursor;
        Some((rows.kind[r], rows.key[r], rows.event_time_ns[r]))
    }

    /// A recorded or derived `BookResyncNeeded`: the view's book of `key` waits for the next snapshot.
    pub fn mark_out_of_sync(&mut self, key: u32) -> Result<(), String> {
        let slot = self
            .slots
            .get_mut(key as usize)
            .ok_or_else(|| format!("unknown key {key}"))?;
        slot.book
            .get_or_insert_with(SyncedBook::new)
            .mark_out_of_sync();
        Ok(())
    }

    /// The next message, read but not applied; None when no rows are queued.
    pub fn read_next(&self) -> Option<Pending> {
        let rows = self.batches.front()?;
        let start = self.cursor;
        let mut end = start;
        while !rows.msg_end[end] {
            end += 1;
        }
        end += 1;
        let (kind, key, time) = (rows.kind[start], rows.key[start], rows.event_time_ns[start]);
        let global = self.base + start as u64;
        let body = match kind {
            KIND_QUOTE => Body::Quote(Quote {
                bid_price: rows.price(start),
                bid_size: rows.size(start),
                ask_price: rows.ask_price(start),
                ask_size: rows.ask_size(start),
                venue_update_id: rows.final_update_id(start),
                event_time_ns: time,
                row: global,
            }),
            KIND_TRADE => Body::Trade(Trade {
                price: rows.price(start),
                size: rows.size(start),
                aggressor_buy: rows.aggressor[start] == AGGRESSOR_BUY,
                event_time_ns: time,
                row: global,
            }),
            KIND_DELTA => {
                let (bids, asks) = levels(rows, start, end);
                Body::Delta(Delta {
                    first_update_id: rows.first_update_id[start],
                    final_update_id: rows.final_update_id[start],
                    previous_final_update_id: rows.previous_update_id(start),
                    bids,
                    asks,
                    event_time_ns: time,
                })
            }
            KIND_SNAPSHOT => {
                let (bids, asks) = levels(rows, start, end);
                Body::Snapshot(Snapshot {
                    last_update_id: rows.final_update_id[start],
                    bids,
                    asks,
                    event_time_ns: time,
                })
            }
            _ => Body::Event,
        };
        let message = Message {
            start: global,
            end: global + (end - start) as u64,
            key,
            kind,
            event_time_ns: time,
            outcome: None,
            venue_changed: false,
        };
        Some(Pending {
            message,
            body,
            rows: end - start,
        })
    }

    /// Apply a message `read_next` returned (the next one), and move past it.
    pub fn apply(&mut self, pending: Pending) -> Message {
        self.apply_with(pending, None)
    }

    /// Apply only the venue's part of a message (the simulated venue's own view of its key), ahead of the
    /// rest: the venue takes a row before the market view does. True if its matchable liquidity may have
    /// changed.
    pub fn apply_venue(&mut self, pending: &Pending) -> bool {
        let Some(venue) = self.slots[pending.message.key as usize].venue_book.as_mut() else {
            return false;
        };
        match &pending.body {
            Body::Quote(quote) => venue.on_quote(*quote),
            Body::Delta(delta) => venue.on_delta(delta.clone()),
            Body::Snapshot(snapshot) => venue.on_snapshot(snapshot),
            Body::Trade(_) | Body::Event => false,
        }
    }

    /// `apply`, where `venue_applied` is the answer of an `apply_venue` already run on this message.
    pub fn apply_with(&mut self, pending: Pending, venue_applied: Option<bool>) -> Message {
        let venue_changed = match venue_applied {
            Some(changed) => changed,
            None => self.apply_venue(&pending),
        };
        let Pending {
            mut message,
            body,
            rows,
        } = pending;
        message.venue_changed = venue_changed;
        let slot = &mut self.slots[message.key as usize];
        match body {
            Body::Quote(quote) => slot.view.on_quote(quote),
            Body::Trade(trade) => slot.view.on_trade(trade),
            Body::Delta(delta) => {
                let outcome = slot
                    .book
                    .get_or_insert_with(SyncedBook::new)
                    .apply_delta(delta);
                slot.outcome = Some(outcome);
                message.outcome = Some(outcome);
            }
            Body::Snapshot(snapshot) => {
                let outcome = slot
                    .book
                    .get_or_insert_with(SyncedBook::new)
                    .apply_snapshot(&snapshot);
                slot.outcome = Some(outcome);
                message.outcome = Some(outcome);
            }
            Body::Event => {} // other events: Python's (a recorded resync comes back as `mark_out_of_sync`)
        }
        self.messages += 1;
        self.skip_rows(rows);
        message
    }

    /// Move past the next message's `rows` without applying it.
    pub fn skip_rows(&mut self, rows: usize) {
        self.cursor += rows;
        let batch_len = self.batches.front().map_or(0, Rows::len);
        if self.cursor >= batch_len {
            self.base += batch_len as u64;
            self.cursor = 0;
            self.batches.pop_front();
        }
    }

    /// Apply the next whole message; None when no rows are queued.
    pub fn step(&mut self) -> Option<Message> {
        let pending = self.read_next()?;
        Some(self.apply(pending))
    }
}

/// What a message carries, read from its rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Quote(Quote),
    Trade(Trade),
    Delta(Delta),
    Snapshot(Snapshot),
    /// Any other event (its content stays in Python).
    Event,
}

/// A message read and not yet applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub message: Message,
    pub body: Body,
    /// How many rows it spans.
    pub rows: usize,
}

fn levels(rows: &Rows, start: usize, end: usize) -> (Vec<Level>, Vec<Level>) {
    let mut bids = Vec::new();
    let mut asks = Vec::new();
    for row in start..end {
        let level = (rows.price(row), rows.size(row));
        match rows.side[row] {
            SIDE_BID => bids.push(level),
            0 => {} // the one row of a message without levels
            _ => asks.push(level),
        }
    }
    (bids, asks)
}
