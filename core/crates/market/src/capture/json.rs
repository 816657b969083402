//! The JSON of one capture line, read by a scanner that accepts only what it can prove `json.loads` and the
//! importer's checks would read the same way (see `super`): objects, arrays, printable-ASCII strings without
//! escapes, numbers in Python's grammar; the known fields typed as Binance sends them, each at most once.

use super::Parsed;
use crate::amount::Amount;
use crate::rows::{KIND_DELTA, KIND_QUOTE, KIND_SNAPSHOT, KIND_TRADE};

const MAX_DEPTH: usize = 64;

/// The (price, size) levels of one side, as parsed.
#[derive(Default)]
pub(super) struct Levels {
    pub(super) bids: Vec<(Amount, Amount)>,
    pub(super) asks: Vec<(Amount, Amount)>,
}

/// One message's fields (byte ranges into the body for its strings).
#[derive(Default)]
pub(super) struct Message {
    pub(super) kind: i8,
    /// A combined-stream message (else the REST snapshot).
    pub(super) stream: bool,
    pub(super) symbol: Option<(usize, usize)>,
    pub(super) first_id: Option<i64>,
    pub(super) final_id: Option<i64>,
    pub(super) previous_id: Option<i64>,
    pub(super) exchange_ms: Option<i64>,
    pub(super) price: Amount,
    pub(super) size: Amount,
    pub(super) ask_price: Amount,
    pub(super) ask_size: Amount,
    pub(super) maker: bool,
    pub(super) trade_id: Option<(usize, usize)>,
}

/// Plain ASCII digits (leading zeros allowed, as Python's `int` reads them) fitting an int64.
pub(super) fn digits_i64(text: &[u8]) -> Option<i64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0i64, |value, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add((b - b'0') as i64)
    })
}

/// A plain decimal string ("61800.30000000", "0.5", "12") as its canonical (mantissa, exponent): no trailing
/// zeros after the point, zero is (0, 0): `adapters.columnar.amounts.amount_parts` of the Decimal pydantic
/// makes of it. None for any other form or an amount that does not fit.
pub fn plain_amount(text: &[u8]) -> Option<Amount> {
    match decimal(text) {
        (amount, read) if read == text.len() => amount,
        _ => None,
    }
}

/// The plain decimal at the start of `text` (up to the first byte that is neither a digit nor its point) and
/// the bytes it takes; the amount is None when those bytes are not one (or it does not fit).
fn decimal(text: &[u8]) -> (Option<Amount>, usize) {
    // One pass: zeros after the point are held back until a digit follows them (trailing ones never count).
    let (mut mantissa, mut kept, mut held) = (Some(0i64), 0u32, 0u32);
    let (mut int_digits, mut frac_digits, mut point) = (0, 0, false);
    let push = |m: Option<i64>, zeros: u32, digit: u8| {
        let mut m = m?;
        for _ in 0..zeros {
            m = m.checked_mul(10)?;
        }
        m.checked_mul(10)?.checked_add((digit - b'0') as i64)
    };
    let mut read = 0;
    for &b in text {
        match b {
            b'0' if point => {
                frac_digits += 1;
                held += 1;
            }
            b'1'..=b'9' if point => {
                frac_digits += 1;
                mantissa = push(mantissa, held, b);
                kept += held + 1;
                held = 0;
            }
            b'0'..=b'9' => {
                int_digits += 1;
                mantissa = push(mantissa, 0, b);
            }
            b'.' if !point => point = true,
            _ => break,
        }
        read += 1;
    }
    if int_digits == 0 || (point && frac_digits == 0) {
        return (None, read);
    }
    let amount = match mantissa {
        Some(0) => Some(Amount::ZERO),
        Some(m) => i8::try_from(-(kept as i64)).ok().map(|e| Amount::new(m, e)),
        None => None,
    };
    (amount, read)
}

/// Known fields of the messages, as bits of a "seen" mask (a repeated known field is not proven: JSON keeps
/// the last, and this parser does not go back).
const STREAM: u32 = 1;
const DATA: u32 = 1 << 1;
const LAST_UPDATE_ID: u32 = 1 << 2;
const BIDS: u32 = 1 << 3;
const ASKS: u32 = 1 << 4;
const SYMBOL: u32 = 1 << 5;
const SNAPSHOT_FIELDS: u32 = LAST_UPDATE_ID | BIDS | ASKS | SYMBOL;

pub(super) struct Scanner<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// JSON whitespace inside a line (a carriage return is not proven: Python reads text with universal
    /// newlines, where it ends the line).
    pub(super) fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// After an array or object item: true at `close` (consumed), false after a `,` (consumed, spaces too).
    fn closed_after_item(&mut self, close: u8) -> Parsed<bool> {
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.ws();
                Ok(false)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err("not the JSON expected"),
        }
    }

    fn expect(&mut self, byte: u8) -> Parsed<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err("not the JSON expected")
        }
    }

    fn literal(&mut self, word: &[u8]) -> Parsed<()> {
        if self.buf[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err("not the JSON expected")
        }
    }

    /// A string of printable ASCII without escapes; the range of its content.
    fn string(&mut self) -> Parsed<(usize, usize)> {
        self.expect(b'"')?;
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b'"') => break,
                Some(b'\\') => return Err("escape in a string"),
                Some(0x20..=0x7e) => self.pos += 1,
                _ => return Err("string of other than printable ASCII"),
            }
        }
        self.pos += 1;
        Ok((start, self.pos - 1))
    }

    /// A JSON integer, not negative, fitting an int64 (a float or an exponent is not an id).
    fn uint(&mut self) -> Parsed<i64> {
        self.uint_text().map(|(_, value)| value)
    }

    fn uint_text(&mut self) -> Parsed<((usize, usize), i64)> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let text = &self.buf[start..self.pos];
        if text.is_empty() || (text[0] == b'0' && text.len() > 1) {
            return Err("not a plain JSON integer");
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err("a number that is not an integer");
        }
        let value = digits_i64(text).ok_or("integer does not fit int64")?;
        Ok(((start, self.pos), value))
    }

    fn boolean(&mut self) -> Parsed<bool> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|_| true),
            Some(b'f') => self.literal(b"false").map(|_| false),
            _ => Err("not a boolean"),
        }
    }

    /// A string holding a plain decimal (one pass: its bytes are digits and a point, all printable ASCII).
    fn amount(&mut self) -> Parsed<Amount> {
        self.expect(b'"')?;
        let (amount, read) = decimal(&self.buf[self.pos..]);
        self.pos += read;
        self.expect(b'"')
            .map_err(|_| "amount not a plain decimal")?;
        amount.ok_or("amount not a plain decimal that fits")
    }

    /// `[[price, size], ...]` of amount strings.
    fn levels(&mut self, into: &mut Vec<(Amount, Amount)>) -> Parsed<()> {
        into.clear();
        self.array(|s| {
            s.expect(b'[')?;
            s.ws();
            let price = s.amount()?;
            s.ws();
            s.expect(b',')?;
            s.ws();
            let size = s.amount()?;
            s.ws();
            s.expect(b']')?;
            into.push((price, size));
            Ok(())
        })
    }

    /// Any JSON value, checked and passed over (fields the importer does not read).
    fn skip(&mut self, depth: usize) -> Parsed<()> {
        if depth > MAX_DEPTH {
            return Err("JSON nested too deep");
        }
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{') => self.object(|s, _| s.skip(depth + 1)),
            Some(b'[') => self.array(|s| s.skip(depth + 1)),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err("not a JSON value this parser proves"),
        }
    }

    /// `[value, ...]`: `item` reads each value.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Parsed<()>) -> Parsed<()> {
        self.expect(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            self.ws();
            if self.closed_after_item(b']')? {
                return Ok(());
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`, the grammar Python's json reads.
    fn number(&mut self) -> Parsed<()> {
        let digits = |s: &mut Self| {
            let start = s.pos;
            while s.peek().is_some_and(|b| b.is_ascii_digit()) {
                s.pos += 1;
            }
            s.pos - start
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = digits(self);
        if n == 0 || (n > 1 && self.buf[int_start] == b'0') {
            return Err("not a JSON number");
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err("not a JSON number");
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err("not a JSON number");
            }
        }
        Ok(())
    }

    /// `{"key": value, ...}`: `field` reads each value (given the key's bytes).
    fn object(&mut self, mut field: impl FnMut(&mut Self, &[u8]) -> Parsed<()>) -> Parsed<()> {
        self.expect(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let (start, end) = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let buf = self.buf;
            field(self, &buf[start..end])?;
            self.ws();
            if self.closed_after_item(b'}')? {
                return Ok(());
            }
        }
    }

    /// One message: a combined-stream envelope (`stream` before `data`) or a REST depth snapshot.
    pub(super) fn message(&mut self, levels: &mut Levels) -> Parsed<Message> {
        let mut m = Message::default();
        let mut seen = 0u32;
        let buf = self.buf;
        self.object(|s, key| {
            let bit = match key {
                b"stream" => STREAM,
                b"data" => DATA,
                b"lastUpdateId" => LAST_UPDATE_ID,
                b"bids" => BIDS,
                b"asks" => ASKS,
                b"symbol" => SYMBOL,
                _ => return s.skip(1),
            };
            if seen & bit != 0 {
                return Err("a field given twice");
            }
            seen |= bit;
            match bit {
                STREAM => {
                    let (start, end) = s.string()?;
                    let at = buf[start..end]
                        .iter()
                        .position(|&b| b == b'@')
                        .ok_or("stream without '@'")?;
                    if at == 0 {
                        return Err("stream without a symbol");
                    }
                    let kind = &buf[start + at + 1..end];
                    m.kind = if kind.starts_with(b"depth") {
                        KIND_DELTA
                    } else if kind == b"bookTicker" {
                        KIND_QUOTE
                    } else if kind == b"trade" {
                        KIND_TRADE
                    } else {
                        return Err("unsupported stream kind");
                    };
                    m.stream = true;
                    m.symbol = Some((start, start + at));
                    Ok(())
                }
                DATA if seen & STREAM == 0 => Err("data before stream"),
                DATA => s.data(&mut m, levels),
                LAST_UPDATE_ID => s.uint().map(|id| m.final_id = Some(id)),
                BIDS => s.levels(&mut levels.bids),
                ASKS => s.levels(&mut levels.asks),
                _ => {
                    let range = s.string()?;
                    m.symbol = Some(range);
                    Ok(())
                }
            }
        })?;
        if seen & STREAM != 0 {
            if seen & DATA == 0 || seen & SNAPSHOT_FIELDS != 0 {
                return Err("not the shape of a combined-stream message");
            }
        } else {
            if seen & (LAST_UPDATE_ID | BIDS | ASKS) != LAST_UPDATE_ID | BIDS | ASKS {
                return Err("neither a combined-stream message nor a whole depth snapshot");
            }
            m.kind = KIND_SNAPSHOT;
        }
        Ok(m)
    }

    /// The `data` object of a stream message of `m.kind`, with its required fields.
    fn data(&mut self, m: &mut Message, levels: &mut Levels) -> Parsed<()> {
        const FIRST: u32 = 1;
        const LAST: u32 = 1 << 1;
        const PREVIOUS: u32 = 1 << 2;
        const B: u32 = 1 << 3;
        const A: u32 = 1 << 4;
        const BIG_B: u32 = 1 << 5;
        const BIG_A: u32 = 1 << 6;
        const EXCHANGE: u32 = 1 << 7;
        const MAKER: u32 = 1 << 8;
        const TRADE_ID: u32 = 1 << 9;
        let kind = m.kind;
        let mut seen = 0u32;
        let required = match kind {
            KIND_DELTA => FIRST | LAST | B | A,
            KIND_QUOTE => LAST | B | A | BIG_B | BIG_A,
            _ => B | A | MAKER | TRADE_ID, // trade: p and q take the bits of b and a
        };
        levels.bids.clear();
        levels.asks.clear();
        self.object(|s, key| {
            let bit = match (kind, key) {
                (KIND_DELTA, b"U") => FIRST,
                (KIND_DELTA | KIND_QUOTE, b"u") => LAST,
                (KIND_DELTA, b"pu") => PREVIOUS,
                (KIND_DELTA | KIND_QUOTE, b"b") | (KIND_TRADE, b"p") => B,
                (KIND_DELTA | KIND_QUOTE, b"a") | (KIND_TRADE, b"q") => A,
                (KIND_QUOTE, b"B") => BIG_B,
                (KIND_QUOTE, b"A") => BIG_A,
                (_, b"E") => EXCHANGE,
                (KIND_TRADE, b"m") => MAKER,
                (KIND_TRADE, b"t") => TRADE_ID,
                _ => return s.skip(1),
            };
            if seen & bit != 0 {
                return Err("a field given twice");
            }
            seen |= bit;
            match (kind, bit) {
                (_, FIRST) => m.first_id = Some(s.uint()?),
                (_, LAST) => m.final_id = Some(s.uint()?),
                (_, PREVIOUS) => m.previous_id = Some(s.uint()?),
                (_, EXCHANGE) => m.exchange_ms = Some(s.uint()?),
                (_, MAKER) => m.maker = s.boolean()?,
                (_, TRADE_ID) => m.trade_id = Some(s.uint_text()?.0),
                (KIND_DELTA, B) => s.levels(&mut levels.bids)?,
                (KIND_DELTA, _) => s.levels(&mut levels.asks)?,
                (_, B) => m.price = s.amount()?,
                (_, A) if kind == KIND_TRADE => m.size = s.amount()?,
                (_, A) => m.ask_price = s.amount()?,
                (_, BIG_B) => m.size = s.amount()?,
                _ => m.ask_size = s.amount()?,
            }
            Ok(())
        })?;
        if seen & required != required {
            return Err("a required field is missing");
        }
        Ok(())
    }
}
