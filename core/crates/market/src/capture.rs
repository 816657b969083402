//! Binance websocket captures (hftbacktest's gzip files of `<receive_time_ns> <raw JSON>` lines) parsed
//! straight into the columnar rows of `adapters/columnar/schema.py`, for `cse import`'s fast path.
//!
//! Python (`adapters/importers/binance_ws.py`) stays the one source of truth for what a line means and for
//! every refusal and its wording. This parser accepts only what it can prove Python would store unchanged:
//! plain ASCII lines of digits, one space and a JSON object of a known message kind (depth update,
//! bookTicker, trade, REST depth snapshot) with exactly the field types Binance sends, amounts as plain
//! decimal strings that fit (int64 mantissa, int8 exponent), no row that `validation.refusal` would refuse.
//! Anything else (a gzip it cannot read whole, an escape in a string, a float where an id belongs, a
//! duplicated field, a crossed quote...) is `Unproven` with the first line concerned, and the import runs
//! the Python path instead, which gives today's errors and bad-row reports.

use std::cmp::Ordering;
use std::io::Read;

use crate::amount::Amount;
use crate::rows::{
    AGGRESSOR_BUY, KIND_DELTA, KIND_QUOTE, KIND_SNAPSHOT, KIND_TRADE, SIDE_ASK, SIDE_BID,
};

const AGGRESSOR_SELL: i8 = 2;
/// The ns per ms of Binance's `E` (ms) -> `exchange_time_ns`.
const NS_PER_MS: i64 = 1_000_000;

/// Why the fast path does not vouch for a capture: the 1-based line (0: the file as a whole) and what it met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unproven {
    pub line: u64,
    pub what: &'static str,
}

type Parsed<T> = Result<T, &'static str>;

mod json;

pub use json::plain_amount;
use json::{digits_i64, Levels, Message, Scanner};

/// A capture's messages and their rows. Messages are in line order (one per line); rows are the schema's,
/// without the columns the importer knows (stream, sequence, source, venue, instrument; the payload is null).
/// Null ids and times hold 0 with their `*_valid` flag 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capture {
    /// Instrument source of each message: `symbols[msg_symbol]`; `None` is a snapshot naming no symbol.
    pub symbols: Vec<Option<Vec<u8>>>,
    pub msg_symbol: Vec<u32>,
    pub msg_kind: Vec<i8>,
    pub msg_time_ns: Vec<i64>,
    pub msg_rows: Vec<u32>,
    /// The body of the first depth update or bookTicker among the first `probe_lines` lines (what the
    /// importer tells the feed from), and the symbols of the stream messages among them.
    pub probe_body: Option<Vec<u8>>,
    pub probe_symbols: Vec<u32>,

    pub kind: Vec<i8>,
    pub msg_end: Vec<u8>,
    pub time_ns: Vec<i64>,
    pub exchange_time_ns: Vec<i64>,
    pub exchange_time_valid: Vec<u8>,
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
    pub first_update_id_valid: Vec<u8>,
    pub final_update_id: Vec<i64>,
    pub final_update_id_valid: Vec<u8>,
    pub previous_update_id: Vec<i64>,
    pub previous_update_id_valid: Vec<u8>,
    /// Arrow utf8 layout: `trade_id_offsets` has one more entry than rows; non-trade rows are empty and null.
    pub trade_id_offsets: Vec<i32>,
    pub trade_id_data: Vec<u8>,
    pub trade_id_valid: Vec<u8>,
    pub aggressor: Vec<i8>,
}

impl Capture {
    /// Room for the rows of `text_len` bytes of capture (a level takes 20+ bytes, a message 100+): the
    /// columns grow without copies; pages never written are never touched.
    fn reserve(&mut self, text_len: usize) {
        let (rows, messages) = (text_len / 16, text_len / 64);
        self.msg_symbol.reserve(messages);
        self.msg_kind.reserve(messages);
        self.msg_time_ns.reserve(messages);
        self.msg_rows.reserve(messages);
        for column in [
            &mut self.kind,
            &mut self.side,
            &mut self.price_e,
            &mut self.size_e,
            &mut self.ask_price_e,
            &mut self.ask_size_e,
            &mut self.aggressor,
        ] {
            column.reserve(rows);
        }
        for column in [
            &mut self.msg_end,
            &mut self.exchange_time_valid,
            &mut self.first_update_id_valid,
            &mut self.final_update_id_valid,
            &mut self.previous_update_id_valid,
            &mut self.trade_id_valid,
        ] {
            column.reserve(rows);
        }
        for column in [
            &mut self.time_ns,
            &mut self.exchange_time_ns,
            &mut self.price_m,
            &mut self.size_m,
            &mut self.ask_price_m,
            &mut self.ask_size_m,
            &mut self.first_update_id,
            &mut self.final_update_id,
            &mut self.previous_update_id,
        ] {
            column.reserve(rows);
        }
        self.trade_id_offsets.reserve(rows + 1);
    }

    pub fn rows(&self) -> usize {
        self.kind.len()
    }

    pub fn messages(&self) -> usize {
        self.msg_kind.len()
    }
}

/// The decompressed bytes of a gzip file holding exactly one member (what the recorder writes).
pub fn gunzip(compressed: &[u8]) -> Result<Vec<u8>, Unproven> {
    let whole = Unproven {
        line: 0,
        what: "not one whole gzip member",
    };
    let hint = compressed
        .len()
        .checked_sub(4)
        .map_or(0, |at| {
            u32::from_le_bytes(compressed[at..].try_into().expect("4 bytes")) as usize
        })
        .min(1 << 30);
    let mut decoder = flate2::bufread::GzDecoder::new(compressed);
    let mut out = Vec::with_capacity(hint);
    decoder.read_to_end(&mut out).map_err(|_| whole.clone())?;
    if !decoder.into_inner().is_empty() {
        return Err(whole); // another member or padding: Python's reader decides what that means
    }
    Ok(out)
}

/// Parse the lines of a decompressed capture.
pub fn parse(text: &[u8], probe_lines: u64) -> Result<Capture, Unproven> {
    let mut out = Capture::default();
    out.reserve(text.len());
    out.trade_id_offsets.push(0);
    let mut levels = Levels::default();
    let (mut pos, mut line_no) = (0, 0u64);
    while pos < text.len() {
        line_no += 1;
        let unproven = |what| Unproven {
            line: line_no,
            what,
        };
        // One pass: a proven line holds no newline before its end (strings hold printable ASCII only).
        pos += parse_line(&text[pos..], line_no <= probe_lines, &mut out, &mut levels)
            .map_err(unproven)?;
        match text.get(pos) {
            None => {}
            Some(b'\n') => pos += 1,
            Some(_) => return Err(unproven("text after the JSON object")),
        }
    }
    Ok(out)
}

/// One line from the start of `text`; returns its length (up to its newline or the end).
fn parse_line(text: &[u8], probing: bool, out: &mut Capture, levels: &mut Levels) -> Parsed<usize> {
    let head = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if text.get(head) != Some(&b' ') {
        return Err("receive time not plain digits and one space");
    }
    let time_ns = digits_i64(&text[..head]).ok_or("receive time not plain digits fitting int64")?;
    let body = &text[head + 1..];
    let mut s = Scanner { buf: body, pos: 0 };
    s.ws();
    let message = s.message(levels)?;
    s.ws();
    let body = &body[..s.pos];
    let symbol = message.symbol.map(|range| &body[range.0..range.1]);
    let symbol_index = intern(&mut out.symbols, symbol);
    if probing {
        if message.stream && !out.probe_symbols.contains(&symbol_index) {
            out.probe_symbols.push(symbol_index);
        }
        if out.probe_body.is_none() && matches!(message.kind, KIND_DELTA | KIND_QUOTE) {
            out.probe_body = Some(body.to_vec());
        }
    }
    let rows = emit(&message, body, time_ns, levels, out)?;
    out.msg_symbol.push(symbol_index);
    out.msg_kind.push(message.kind);
    out.msg_time_ns.push(time_ns);
    out.msg_rows.push(rows);
    Ok(head + 1 + body.len())
}

fn intern(symbols: &mut Vec<Option<Vec<u8>>>, symbol: Option<&[u8]>) -> u32 {
    if let Some(at) = symbols.iter().position(|s| s.as_deref() == symbol) {
        return at as u32;
    }
    symbols.push(symbol.map(<[u8]>::to_vec));
    (symbols.len() - 1) as u32
}

fn emit(m: &Message, body: &[u8], time_ns: i64, levels: &Levels, out: &mut Capture) -> Parsed<u32> {
    let exchange = match m.exchange_ms {
        Some(ms) => Some(
            ms.checked_mul(NS_PER_MS)
                .ok_or("exchange time overflows int64 ns")?,
        ),
        None => None,
    };
    match m.kind {
        KIND_QUOTE => {
            // validation.refusal: prices positive, sizes not negative, neither crossed nor locked.
            if !m.price.is_positive() || !m.ask_price.is_positive() {
                return Err("quote price not positive");
            }
            if m.price.cmp_value(m.ask_price) != Ordering::Less {
                return Err("crossed or locked quote");
            }
            out.row(m.kind, true, time_ns, exchange, 0, m.price, m.size);
            out.ask(m.ask_price, m.ask_size);
            out.ids(None, m.final_id, None);
            out.trade(None, 0)?;
            Ok(1)
        }
        KIND_TRADE => {
            if !m.price.is_positive() || !m.size.is_positive() {
                return Err("trade price or size not positive");
            }
            out.row(m.kind, true, time_ns, exchange, 0, m.price, m.size);
            out.ask(Amount::ZERO, Amount::ZERO);
            out.ids(None, None, None);
            let aggressor = if m.maker {
                AGGRESSOR_SELL
            } else {
                AGGRESSOR_BUY
            };
            let id = m.trade_id.ok_or("trade without t")?;
            out.trade(Some(&body[id.0..id.1]), aggressor)?;
            Ok(1)
        }
        _ => {
            for (price, _) in levels.bids.iter().chain(&levels.asks) {
                if !price.is_positive() {
                    return Err("level price not positive");
                }
            }
            if m.kind == KIND_SNAPSHOT && crossed(levels) {
                return Err("crossed snapshot");
            }
            let (first, previous) = if m.kind == KIND_DELTA {
                (m.first_id, m.previous_id)
            } else {
                (None, None)
            };
            let sides = levels
                .bids
                .iter()
                .map(|l| (SIDE_BID, l))
                .chain(levels.asks.iter().map(|l| (SIDE_ASK, l)));
            let count = levels.bids.len() + levels.asks.len();
            for (i, (side, &(price, size))) in sides.enumerate() {
                out.row(m.kind, i + 1 == count, time_ns, exchange, side, price, size);
                out.ask(Amount::ZERO, Amount::ZERO);
                out.ids(first, m.final_id, previous);
                out.trade(None, 0)?;
            }
            if count == 0 {
                out.row(
                    m.kind,
                    true,
                    time_ns,
                    exchange,
                    0,
                    Amount::ZERO,
                    Amount::ZERO,
                );
                out.ask(Amount::ZERO, Amount::ZERO);
                out.ids(first, m.final_id, previous);
                out.trade(None, 0)?;
                return Ok(1);
            }
            u32::try_from(count).map_err(|_| "too many levels")
        }
    }
}

/// A snapshot whose best bid is at or above its best ask (levels of size 0 do not count).
fn crossed(levels: &Levels) -> bool {
    let live = |side: &[(Amount, Amount)]| {
        side.iter()
            .filter(|(_, size)| !size.is_zero())
            .map(|&(price, _)| price)
            .collect::<Vec<_>>()
    };
    let (bids, asks) = (live(&levels.bids), live(&levels.asks));
    match (bids.iter().max(), asks.iter().min()) {
        (Some(bid), Some(ask)) => bid >= ask,
        _ => false,
    }
}

impl Capture {
    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        kind: i8,
        end: bool,
        time_ns: i64,
        exchange: Option<i64>,
        side: i8,
        price: Amount,
        size: Amount,
    ) {
        self.kind.push(kind);
        self.msg_end.push(end as u8);
        self.time_ns.push(time_ns);
        self.exchange_time_ns.push(exchange.unwrap_or(0));
        self.exchange_time_valid.push(exchange.is_some() as u8);
        self.side.push(side);
        self.price_m.push(price.mantissa);
        self.price_e.push(price.exponent);
        self.size_m.push(size.mantissa);
        self.size_e.push(size.exponent);
    }

    fn ask(&mut self, price: Amount, size: Amount) {
        self.ask_price_m.push(price.mantissa);
        self.ask_price_e.push(price.exponent);
        self.ask_size_m.push(size.mantissa);
        self.ask_size_e.push(size.exponent);
    }

    fn ids(&mut self, first: Option<i64>, last: Option<i64>, previous: Option<i64>) {
        for (id, (values, valid)) in [
            (
                first,
                (&mut self.first_update_id, &mut self.first_update_id_valid),
            ),
            (
                last,
                (&mut self.final_update_id, &mut self.final_update_id_valid),
            ),
            (
                previous,
                (
                    &mut self.previous_update_id,
                    &mut self.previous_update_id_valid,
                ),
            ),
        ] {
            values.push(id.unwrap_or(0));
            valid.push(id.is_some() as u8);
        }
    }

    /// `id`: the text of the JSON integer `t`, which is what Python's `str(t)` gives.
    fn trade(&mut self, id: Option<&[u8]>, aggressor: i8) -> Parsed<()> {
        if let Some(text) = id {
            self.trade_id_data.extend_from_slice(text);
        }
        let end = i32::try_from(self.trade_id_data.len()).map_err(|_| "trade ids over 2 GiB")?;
        self.trade_id_offsets.push(end);
        self.trade_id_valid.push(id.is_some() as u8);
        self.aggressor.push(aggressor);
        Ok(())
    }
}

/// Read, decompress and parse the capture at `path` (an unreadable file is `Unproven` too: Python words it).
pub fn read(path: &std::path::Path, probe_lines: u64) -> Result<Capture, Unproven> {
    let compressed = std::fs::read(path).map_err(|_| Unproven {
        line: 0,
        what: "cannot read the file",
    })?;
    parse(&gunzip(&compressed)?, probe_lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn amount(text: &str) -> Option<(i64, i8)> {
        plain_amount(text.as_bytes()).map(|a| (a.mantissa, a.exponent))
    }

    #[test]
    fn amounts_take_their_canonical_form() {
        // canonical_amount: no trailing zeros after the point, an integer keeps its zeros, zero is (0, 0).
        assert_eq!(amount("61800.30000000"), Some((618003, -1)));
        assert_eq!(amount("0.00000000"), Some((0, 0)));
        assert_eq!(amount("0"), Some((0, 0)));
        assert_eq!(amount("100"), Some((100, 0)));
        assert_eq!(amount("100.00"), Some((100, 0)));
        assert_eq!(amount("007.50"), Some((75, -1)));
        assert_eq!(amount("0.00000001"), Some((1, -8)));
        assert_eq!(amount("9223372036854775807"), Some((i64::MAX, 0)));
        let many_places = format!("0.{}1", "0".repeat(127));
        assert_eq!(amount(&many_places), Some((1, -128)));
        assert_eq!(amount(&format!("0.{}", "0".repeat(300))), Some((0, 0)));
        for not_proven in [
            "",
            ".5",
            "5.",
            "1e5",
            "-1",
            "+1",
            "1.2.3",
            " 1",
            "9223372036854775808",
            "NaN",
        ] {
            assert_eq!(amount(not_proven), None, "{not_proven:?}");
        }
        assert_eq!(amount(&format!("0.{}1", "0".repeat(128))), None); // 129 places: beyond int8
    }

    const DEPTH: &str = r#"1723161253937085768 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"]],"a":[["61837.64000000","1.54698000"],["61839.85000000","0.00000000"]]}}"#;
    const QUOTE: &str = r#"1723161254000000000 {"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"0.5","a":"61837.64000000","A":"1.2"}}"#;
    const TRADE: &str = r#"1723161254087896568 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255358,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.00100000","T":1723161255357,"m":true,"M":true}}"#;
    const SNAPSHOT: &str = r#"1723161254100000000 {"lastUpdateId":50093239218,"bids":[["61837.63","1.0"]],"asks":[["61837.64","2.0"]]}"#;

    fn lines(lines: &[&str]) -> Vec<u8> {
        lines.join("\n").into_bytes()
    }

    #[test]
    fn messages_become_the_schema_rows() {
        let c = parse(&lines(&[DEPTH, QUOTE, TRADE, SNAPSHOT]), 2_000).unwrap();
        assert_eq!(c.symbols, vec![Some(b"btcusdt".to_vec()), None]);
        assert_eq!(c.msg_symbol, vec![0, 0, 0, 1]);
        assert_eq!(
            c.msg_kind,
            vec![KIND_DELTA, KIND_QUOTE, KIND_TRADE, KIND_SNAPSHOT]
        );
        assert_eq!(c.msg_rows, vec![3, 1, 1, 2]);
        assert_eq!(c.probe_symbols, vec![0]);
        assert_eq!(c.probe_body.as_deref(), Some(&DEPTH.as_bytes()[20..]));
        assert_eq!(c.kind, vec![3, 3, 3, 1, 2, 4, 4]);
        assert_eq!(c.msg_end, vec![0, 0, 1, 1, 1, 0, 1]);
        assert_eq!(c.side, vec![1, 2, 2, 0, 0, 1, 2]);
        assert_eq!(
            c.price_m,
            vec![6173763, 6183764, 6183985, 6183763, 6183763, 6183763, 6183764]
        );
        assert_eq!(c.price_e, vec![-2; 7]);
        assert_eq!((c.size_m[0], c.size_e[0]), (0, 0));
        assert_eq!((c.size_m[1], c.size_e[1]), (154698, -5));
        assert_eq!(
            (c.ask_price_m[3], c.ask_size_m[3], c.ask_size_e[3]),
            (6183764, 12, -1)
        );
        assert_eq!(c.first_update_id_valid, vec![1, 1, 1, 0, 0, 0, 0]);
        assert_eq!(c.first_update_id[0], 50093239189);
        assert_eq!(
            c.final_update_id[..4],
            [50093239202, 50093239202, 50093239202, 50093239212]
        );
        assert_eq!(c.final_update_id_valid, vec![1, 1, 1, 1, 0, 1, 1]);
        assert_eq!(c.previous_update_id_valid, vec![0; 7]); // spot sends no pu
        assert_eq!(c.exchange_time_valid, vec![1, 1, 1, 0, 1, 0, 0]);
        assert_eq!(c.exchange_time_ns[4], 1723161255358 * NS_PER_MS);
        assert_eq!(c.trade_id_data, b"3735683259");
        assert_eq!(c.trade_id_offsets, vec![0, 0, 0, 0, 0, 10, 10, 10]);
        assert_eq!(c.trade_id_valid, vec![0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(c.aggressor, vec![0, 0, 0, 0, AGGRESSOR_SELL, 0, 0]); // m: the buyer made, a seller took
        assert_eq!(c.time_ns[4], 1723161254087896568);
    }

    #[test]
    fn a_depth_update_without_levels_is_one_row() {
        let empty = r#"5 {"stream":"btcusd_perp@depth@0ms","data":{"U":1,"u":2,"pu":0,"b":[],"a":[],"ps":"BTCUSD"}}"#;
        let c = parse(empty.as_bytes(), 2_000).unwrap();
        assert_eq!(
            (c.kind.clone(), c.side.clone(), c.msg_end.clone()),
            (vec![3], vec![0], vec![1])
        );
        assert_eq!(
            (c.previous_update_id, c.previous_update_id_valid),
            (vec![0], vec![1])
        );
    }

    fn unproven(line: &str) -> Option<&'static str> {
        let text = lines(&[DEPTH, line]);
        match parse(&text, 2_000) {
            Ok(_) => None,
            Err(e) => {
                assert_eq!(e.line, 2, "{line}");
                Some(e.what)
            }
        }
    }

    #[test]
    fn only_what_python_would_store_unchanged_is_proven() {
        let trade = |from: &str, to: &str| TRADE.replacen(from, to, 1);
        for line in [
            DEPTH.replace("@depth@100ms", "@kline_1m"),
            DEPTH[..DEPTH.len() / 2].to_string(),
            format!("-5 {}", &DEPTH[20..]),
            format!("notatime {}", &DEPTH[20..]),
            format!("99999999999999999999 {}", &DEPTH[20..]),
            DEPTH.replacen(' ', "\t", 1),
            trade(r#""p":"#, r#""price":"#),
            trade(r#""q":"0.00100000""#, r#""q":"abc""#),
            trade(r#""q":"0.00100000""#, r#""q":"0""#), // refused: trade size not positive
            trade(r#""q":"0.00100000""#, r#""q":0.001"#),
            trade(r#""m":true"#, r#""m":1"#),
            trade(r#""t":3735683259"#, r#""t":3735683259.0"#),
            trade(r#""t":3735683259"#, r#""t":"3735683259""#),
            trade(r#""s":"BTCUSDT""#, r#""s":"BTC\u0055SDT""#),
            trade(r#""p":"61837.63000000""#, r#""p":"61837.63000000","p":"1""#),
            trade(r#""E":1723161255358"#, r#""E":NaN"#),
            trade("}}", "}}\r"),
            trade("}}", "}} x"),
            QUOTE.replace(r#""a":"61837.64000000""#, r#""a":"61837.63""#), // locked
            QUOTE.replace(r#""a":"61837.64000000""#, r#""a":"61837.62""#), // crossed
            SNAPSHOT.replace(r#""61837.64","2.0""#, r#""61837.63","2.0""#), // crossed snapshot
            SNAPSHOT.replace(r#""61837.63","1.0""#, r#""0","1.0""#),
            r#"7 {"data":{"U":1,"u":2,"b":[],"a":[]},"stream":"btcusdt@depth"}"#.to_string(),
            r#"7 {"stream":"btcusdt@depth","data":{"U":1,"u":2,"b":[],"a":[]},"bids":[]}"#
                .to_string(),
            r#"7 {"stream":"@depth","data":{"U":1,"u":2,"b":[],"a":[]}}"#.to_string(),
            r#"7 {"lastUpdateId":1,"bids":[]}"#.to_string(),
            r#"7 [1, 2]"#.to_string(),
            r#"7 "#.to_string(),
            "7 {\"stream\":\"btc\u{e9}@trade\"}".to_string(),
        ] {
            assert!(unproven(&line).is_some(), "{line}");
        }
        // Whitespace JSON allows, fields in another order, unknown fields of any JSON kind: proven.
        for line in [
            format!("{}  ", TRADE.replacen(' ', "  ", 1)),
            trade(
                r#""e":"trade","#,
                r#""x":[1,-2.5e-3,{"y":[null,false]}],"e":"trade","#,
            ),
            TRADE.replace(",", " ,\t"),
        ] {
            assert_eq!(unproven(&line), None, "{line}");
        }
    }

    #[test]
    fn gzip_of_one_member_only() {
        let text = lines(&[DEPTH, QUOTE]);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&text).unwrap();
        let gz = encoder.finish().unwrap();
        assert_eq!(gunzip(&gz).unwrap(), text);
        assert!(gunzip(&gz[..gz.len() - 3]).is_err()); // truncated
        assert!(gunzip(&[gz.clone(), gz.clone()].concat()).is_err()); // two members: Python's reader decides
        assert!(gunzip(&[gz.clone(), vec![0, 0]].concat()).is_err());
        assert!(gunzip(&text).is_err()); // not gzip
        let mut corrupt = gz.clone();
        let at = corrupt.len() - 6; // inside the CRC32 of the trailer
        corrupt[at] ^= 0xff;
        assert!(gunzip(&corrupt).is_err());
    }
}
