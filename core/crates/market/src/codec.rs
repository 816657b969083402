//! Snapshot/restore of the core's state as bytes (a worker's snapshot carries them next to the pickled Python
//! states). Little-endian, versioned; queued rows are input, not state, and are not included: a restored core
//! continues at the row position it had.

use std::collections::VecDeque;

use crate::amount::Amount;
use crate::book::{BookSide, Cause, Delta, Level, Outcome, Status, SyncedBook};
use crate::core::{Core, Slot};
use crate::venue::VenueBook;
use crate::view::{MarketView, Quote, Trade};

const MAGIC: &[u8; 8] = b"CSECORE\0";
const VERSION: u32 = 1;

#[derive(Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }
    fn bool(&mut self, v: bool) {
        self.u8(v as u8);
    }
    fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, v: &str) {
        self.u32(v.len() as u32);
        self.bytes.extend_from_slice(v.as_bytes());
    }
    fn amount(&mut self, v: Amount) {
        self.i64(v.mantissa);
        self.u8(v.exponent as u8);
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        self.bool(v.is_some());
        self.i64(v.unwrap_or(0));
    }
    fn opt<T>(&mut self, v: &Option<T>, f: impl FnOnce(&mut Self, &T)) {
        self.bool(v.is_some());
        if let Some(x) = v {
            f(self, x);
        }
    }
    fn levels(&mut self, levels: &[Level]) {
        self.u32(levels.len() as u32);
        for &(p, q) in levels {
            self.amount(p);
            self.amount(q);
        }
    }
    fn quote(&mut self, q: &Quote) {
        for a in [q.bid_price, q.bid_size, q.ask_price, q.ask_size] {
            self.amount(a);
        }
        self.opt_i64(q.venue_update_id);
        self.i64(q.event_time_ns);
        self.u64(q.row);
    }
    fn trade(&mut self, t: &Trade) {
        self.amount(t.price);
        self.amount(t.size);
        self.bool(t.aggressor_buy);
        self.i64(t.event_time_ns);
        self.u64(t.row);
    }
    fn outcome(&mut self, o: &Outcome) {
        self.u8(o.status as u8);
        self.i64(o.expected_update_id);
        self.i64(o.received_update_id);
        self.u32(o.replayed);
        self.u8(o.cause.map_or(0, |c| c as u8));
        self.bool(o.during_replay);
    }
    fn side(&mut self, side: &BookSide) {
        let levels: Vec<Level> = side.levels.iter().map(|(p, q)| (*p, *q)).collect();
        self.levels(&levels);
    }
    fn book(&mut self, b: &SyncedBook) {
        self.side(&b.bids);
        self.side(&b.asks);
        self.i64(b.applied_update_id);
        self.i64(b.applied_time_ns);
        self.bool(b.awaiting_first_delta);
        self.bool(b.in_sync);
        self.bool(b.has_snapshot);
        self.u64(b.deltas_applied);
        self.u64(b.max_buffered as u64);
        self.u64(b.buffer_overflows);
        self.u32(b.buffer.len() as u32);
        for d in &b.buffer {
            self.i64(d.first_update_id);
            self.i64(d.final_update_id);
            self.opt_i64(d.previous_final_update_id);
            self.levels(&d.bids);
            self.levels(&d.asks);
            self.i64(d.event_time_ns);
        }
    }
}

pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

type R<T> = Result<T, String>;

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("core snapshot truncated at byte {}", self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> R<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(format!(
                "core snapshot: bad flag {v} at byte {}",
                self.at - 1
            )),
        }
    }
    fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> R<i64> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn str(&mut self) -> R<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| "core snapshot: a key is not UTF-8".to_owned())
    }
    fn amount(&mut self) -> R<Amount> {
        Ok(Amount::new(self.i64()?, self.u8()? as i8))
    }
    fn opt_i64(&mut self) -> R<Option<i64>> {
        let some = self.bool()?;
        let v = self.i64()?;
        Ok(some.then_some(v))
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<Option<T>> {
        if self.bool()? {
            Ok(Some(f(self)?))
        } else {
            Ok(None)
        }
    }
    fn levels(&mut self) -> R<Vec<Level>> {
        let n = self.u32()? as usize;
        let mut levels = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            levels.push((self.amount()?, self.amount()?));
        }
        Ok(levels)
    }
    fn quote(&mut self) -> R<Quote> {
        Ok(Quote {
            bid_price: self.amount()?,
            bid_size: self.amount()?,
            ask_price: self.amount()?,
            ask_size: self.amount()?,
            venue_update_id: self.opt_i64()?,
            event_time_ns: self.i64()?,
            row: self.u64()?,
        })
    }
    fn trade(&mut self) -> R<Trade> {
        Ok(Trade {
            price: self.amount()?,
            size: self.amount()?,
            aggressor_buy: self.bool()?,
            event_time_ns: self.i64()?,
            row: self.u64()?,
        })
    }
    fn outcome(&mut self) -> R<Outcome> {
        let status = match self.u8()? {
            0 => Status::Applied,
            1 => Status::Buffered,
            2 => Status::Stale,
            3 => Status::OutOfSync,
            v => return Err(format!("core snapshot: bad status {v}")),
        };
        let expected_update_id = self.i64()?;
        let received_update_id = self.i64()?;
        let replayed = self.u32()?;
        let cause = match self.u8()? {
            0 => None,
            1 => Some(Cause::Gap),
            2 => Some(Cause::Crossed),
            3 => Some(Cause::Invalid),
            v => return Err(format!("core snapshot: bad cause {v}")),
        };
        let during_replay = self.bool()?;
        Ok(Outcome {
            status,
            expected_update_id,
            received_update_id,
            replayed,
            cause,
            during_replay,
        })
    }
    fn side(&mut self, is_bid: bool) -> R<BookSide> {
        let mut side = BookSide::new(is_bid);
        for (p, q) in self.levels()? {
            side.levels.insert(p, q);
        }
        Ok(side)
    }
    fn book(&mut self) -> R<SyncedBook> {
        let bids = self.side(true)?;
        let asks = self.side(false)?;
        let mut book = SyncedBook {
            bids,
            asks,
            applied_update_id: self.i64()?,
            applied_time_ns: self.i64()?,
            awaiting_first_delta: self.bool()?,
            in_sync: self.bool()?,
            has_snapshot: self.bool()?,
            deltas_applied: self.u64()?,
            max_buffered: self.u64()? as usize,
            buffer_overflows: self.u64()?,
            buffer: VecDeque::new(),
        };
        let n = self.u32()?;
        for _ in 0..n {
            book.buffer.push_back(Delta {
                first_update_id: self.i64()?,
                final_update_id: self.i64()?,
                previous_final_update_id: self.opt_i64()?,
                bids: self.levels()?,
                asks: self.levels()?,
                event_time_ns: self.i64()?,
            });
        }
        Ok(book)
    }
}

fn write_view(w: &mut Writer, v: &MarketView) {
    for q in [
        &v.quote,
        &v.priced_quote,
        &v.valid_quote,
        &v.prior_valid_quote,
    ] {
        w.opt(q, |w, q| w.quote(q));
    }
    w.opt(&v.trade, |w, t| w.trade(t));
}

fn read_view(r: &mut Reader) -> R<MarketView> {
    Ok(MarketView {
        quote: r.opt(|r| r.quote())?,
        priced_quote: r.opt(|r| r.quote())?,
        valid_quote: r.opt(|r| r.quote())?,
        prior_valid_quote: r.opt(|r| r.quote())?,
        trade: r.opt(|r| r.trade())?,
    })
}

/// The core's state (keys, views, books, venue views, row position, and what `extra` adds) as bytes.
pub fn encode(core: &Core, extra: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes.extend_from_slice(MAGIC);
    w.u32(VERSION);
    w.u64(core.position());
    w.u64(core.messages);
    w.u32(core.slots.len() as u32);
    for slot in &core.slots {
        w.str(&slot.venue);
        w.str(&slot.instrument);
        write_view(&mut w, &slot.view);
        w.opt(&slot.book, |w, b| w.book(b));
        w.opt(&slot.outcome, |w, o| w.outcome(o));
        w.opt(&slot.venue_book, |w, v| {
            w.opt(&v.book, |w, b| w.book(b));
            w.opt(&v.quote, |w, q| w.quote(q));
        });
    }
    extra(&mut w);
    w.bytes
}

/// A core from `encode`'s bytes; `extra` reads what `encode`'s `extra` wrote.
pub fn decode<T>(bytes: &[u8], extra: impl FnOnce(&mut Reader) -> R<T>) -> R<(Core, T)> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err("not a market core snapshot".to_owned());
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(format!(
            "market core snapshot version {version}, this build reads {VERSION}"
        ));
    }
    let position = r.u64()?;
    let messages = r.u64()?;
    let n = r.u32()?;
    let mut core = Core::restored(position, messages);
    for _ in 0..n {
        let venue = r.str()?;
        let instrument = r.str()?;
        let view = read_view(&mut r)?;
        let book = r.opt(|r| r.book())?;
        let outcome = r.opt(|r| r.outcome())?;
        let venue_book = r.opt(|r| {
            Ok(VenueBook {
                book: r.opt(|r| r.book())?,
                quote: r.opt(|r| r.quote())?,
            })
        })?;
        core.slots.push(Slot {
            venue,
            instrument,
            view,
            book,
            outcome,
            venue_book,
        });
    }
    let more = extra(&mut r)?;
    if r.at != bytes.len() {
        return Err(format!(
            "core snapshot has {} trailing bytes",
            bytes.len() - r.at
        ));
    }
    Ok((core, more))
}

// The writer and reader steps the bindings need for what they add to a snapshot (`encode`'s `extra`).
impl Writer {
    pub fn put_u8(&mut self, v: u8) {
        self.u8(v)
    }
    pub fn put_u64(&mut self, v: u64) {
        self.u64(v)
    }
    pub fn put_i64(&mut self, v: i64) {
        self.i64(v)
    }
}

impl Reader<'_> {
    pub fn get_u8(&mut self) -> R<u8> {
        self.u8()
    }
    pub fn get_u64(&mut self) -> R<u64> {
        self.u64()
    }
    pub fn get_i64(&mut self) -> R<i64> {
        self.i64()
    }
}
