//! The simulated venue's view of one instrument (`adapters/simulated_venue.py` `_Market`): its own L2 book
//! plus the last ticker it accepted; when the book is out of sync or older than the ticker it matches
//! against the ticker's level first, then the book beyond it.

use crate::amount::Amount;
use crate::book::{Delta, Level, Snapshot, Status, SyncedBook};
use crate::view::Quote;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// The L2 book may be matched against (or there is no L2 book: the ticker is all the venue has).
    None = 0,
    /// The book is out of sync: only the ticker's level.
    OutOfSync = 1,
    /// The book is older than the ticker: the ticker's level, then the book beyond it.
    Stale = 2,
}

#[derive(Clone, Debug, Default)]
pub struct VenueBook {
    pub book: Option<SyncedBook>,
    pub quote: Option<Quote>,
}

impl VenueBook {
    /// Take a ticker; true if the liquidity the venue matches against may have changed. A crossed or
    /// non-positive ticker cannot be matched against and is ignored.
    pub fn on_quote(&mut self, quote: Quote) -> bool {
        if !quote.is_matchable() {
            return false;
        }
        self.quote = Some(quote);
        true
    }

    pub fn on_delta(&mut self, delta: Delta) -> bool {
        let status = self
            .book
            .get_or_insert_with(SyncedBook::new)
            .apply_delta(delta)
            .status;
        matches!(status, Status::Applied | Status::OutOfSync)
    }

    pub fn on_snapshot(&mut self, snapshot: &Snapshot) -> bool {
        let status = self
            .book
            .get_or_insert_with(SyncedBook::new)
            .apply_snapshot(snapshot)
            .status;
        matches!(status, Status::Applied | Status::OutOfSync)
    }

    pub fn fallback(&self) -> Fallback {
        let Some(book) = &self.book else {
            return Fallback::None;
        };
        if !book.in_sync {
            return Fallback::OutOfSync;
        }
        match &self.quote {
            Some(q) if book.behind(q.venue_update_id, q.event_time_ns) => Fallback::Stale,
            _ => Fallback::None,
        }
    }

    /// The side's liquidity as the venue holds it, best first: the L2 book; with a fallback the ticker's
    /// level, then (book in sync but older) the book's levels beyond it; with no L2 book, the ticker.
    pub fn levels(&self, bids: bool, fallback: Fallback) -> impl Iterator<Item = Level> + '_ {
        let mut beyond: Option<Amount> = None;
        let mut first: Option<Level> = None;
        if let Some(q) = &self.quote {
            if self.book.is_none() || fallback != Fallback::None {
                let (price, size) = if bids {
                    (q.bid_price, q.bid_size)
                } else {
                    (q.ask_price, q.ask_size)
                };
                beyond = Some(price);
                if size.is_positive() {
                    first = Some((price, size));
                }
            }
        }
        let book_levels = self
            .book
            .as_ref()
            .filter(|b| b.in_sync)
            .map(|b| b.side(bids).walk());
        let rest = book_levels.into_iter().flatten().filter(move |(price, _)| {
            beyond.is_none_or(|b| if bids { *price < b } else { *price > b })
        });
        first.into_iter().chain(rest)
    }

    /// Recorded quantity at `price`; None when what the venue holds does not reach that deep.
    pub fn quantity_at(&self, bids: bool, price: Amount, fallback: Fallback) -> Option<Amount> {
        for (level, size) in self.levels(bids, fallback) {
            if level == price {
                return Some(size);
            }
            if if bids { level < price } else { level > price } {
                return Some(Amount::ZERO);
            }
        }
        None
    }
}
