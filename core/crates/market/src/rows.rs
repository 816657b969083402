//! Input rows in the columnar layout of `adapters/columnar/schema.py`: one row per book level, per quote, per
//! trade, in engine order; the rows of one message are contiguous and `msg_end` marks the last. Rust keeps
//! only the integer columns it needs; strings (ids, payloads) stay in Python.

use crate::amount::Amount;

pub const KIND_QUOTE: i8 = 1;
pub const KIND_TRADE: i8 = 2;
pub const KIND_DELTA: i8 = 3;
pub const KIND_SNAPSHOT: i8 = 4;
pub const KIND_EVENT: i8 = 9;

pub const SIDE_BID: i8 = 1;
pub const SIDE_ASK: i8 = 2;

pub const AGGRESSOR_BUY: i8 = 1;

/// One batch of rows, column by column (all columns the same length). `key` is the (venue, instrument)
/// index the caller registered (`Core::add_key`); null update ids are 0 with their `*_valid` flag false.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub key: Vec<u32>,
    pub kind: Vec<i8>,
    pub msg_end: Vec<bool>,
    pub event_time_ns: Vec<i64>,
    pub side: Vec<i8>,
    pub price_m: Vec<i64>,
    pub price_e: Vec<i8>,
    pub size_m: Vec<i64>,
    pub size_e: Vec<i8>,
    pub ask_price_m: Vec<i64>,
    pub ask_price_e: Vec<i8>,
    pub ask_size_m: Vec<i64>,
    pub ask_size_e: Vec<i8>,
    pub first_update_id: Vec<i64>,
    pub final_update_id: Vec<i64>,
    pub final_update_id_valid: Vec<bool>,
    pub previous_update_id: Vec<i64>,
    pub previous_update_id_valid: Vec<bool>,
    pub aggressor: Vec<i8>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.kind.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kind.is_empty()
    }

    /// Every column has the same length, every message ends inside the batch, and each message's rows
    /// share one key, kind and time. Returns the first problem, naming the column or the row.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.len();
        let lengths = [
            ("key", self.key.len()),
            ("msg_end", self.msg_end.len()),
            ("event_time_ns", self.event_time_ns.len()),
            ("side", self.side.len()),
            ("price_m", self.price_m.len()),
            ("price_e", self.price_e.len()),
            ("size_m", self.size_m.len()),
            ("size_e", self.size_e.len()),
            ("ask_price_m", self.ask_price_m.len()),
            ("ask_price_e", self.ask_price_e.len()),
            ("ask_size_m", self.ask_size_m.len()),
            ("ask_size_e", self.ask_size_e.len()),
            ("first_update_id", self.first_update_id.len()),
            ("final_update_id", self.final_update_id.len()),
            ("final_update_id_valid", self.final_update_id_valid.len()),
            ("previous_update_id", self.previous_update_id.len()),
            (
                "previous_update_id_valid",
                self.previous_update_id_valid.len(),
            ),
            ("aggressor", self.aggressor.len()),
        ];
        for (name, len) in lengths {
            if len != n {
                return Err(format!("column {name} has {len} rows, column kind has {n}"));
            }
        }
        let mut start = 0;
        for row in 0..n {
            let kind = self.kind[row];
            if !matches!(
                kind,
                KIND_QUOTE | KIND_TRADE | KIND_DELTA | KIND_SNAPSHOT | KIND_EVENT
            ) {
                return Err(format!("row {row}: unknown kind {kind}"));
            }
            if !(0..=2).contains(&self.side[row]) {
                return Err(format!("row {row}: unknown side {}", self.side[row]));
            }
            if row > start
                && (kind != self.kind[start]
                    || self.key[row] != self.key[start]
                    || self.event_time_ns[row] != self.event_time_ns[start])
            {
                return Err(format!("row {row}: a message's rows must share kind, key and time (message starts at row {start})"));
            }
            if matches!(kind, KIND_QUOTE | KIND_TRADE | KIND_EVENT) && !self.msg_end[row] {
                return Err(format!(
                    "row {row}: a quote, trade or event row is a whole message (msg_end)"
                ));
            }
            if self.msg_end[row] {
                start = row + 1;
            }
        }
        if start != n {
            return Err(format!(
                "the last message (from row {start}) does not end in the batch (msg_end)"
            ));
        }
        Ok(())
    }

    pub fn price(&self, row: usize) -> Amount {
        Amount::new(self.price_m[row], self.price_e[row])
    }

    pub fn size(&self, row: usize) -> Amount {
        Amount::new(self.size_m[row], self.size_e[row])
    }

    pub fn ask_price(&self, row: usize) -> Amount {
        Amount::new(self.ask_price_m[row], self.ask_price_e[row])
    }

    pub fn ask_size(&self, row: usize) -> Amount {
        Amount::new(self.ask_size_m[row], self.ask_size_e[row])
    }

    pub fn final_update_id(&self, row: usize) -> Option<i64> {
        self.final_update_id_valid[row].then_some(self.final_update_id[row])
    }

    pub fn previous_update_id(&self, row: usize) -> Option<i64> {
        self.previous_update_id_valid[row].then_some(self.previous_update_id[row])
    }
}
