//! PyO3 bindings of `cse-market`: the extension module `cse_core._core`. Only conversions live here: columns
//! come in through the buffer protocol (NumPy arrays, Arrow buffers), amounts leave as (mantissa, exponent)
//! integer pairs, never as Decimal values.

use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::{PyBufferError, PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use std::sync::Arc;

use cse_market::book::{Level, Outcome, SyncedBook};
use cse_market::capture::Capture;
use cse_market::core::{Core, Message, Slot};
use cse_market::rows::Rows;
use cse_market::venue::Fallback;
use cse_market::view::{Quote, Trade};
use cse_market::wake::{goes_out_of_sync, Gate, Hurdle, Predicate, Ratio, Run, Spec};
use cse_market::Amount;

/// (price mantissa, price exponent, size mantissa, size exponent)
type PyLevel = (i64, i8, i64, i8);
/// (status, cause, expected update id, received update id, replayed, during replay)
type PyOutcome = (u8, u8, i64, i64, u32, bool);

fn value_error(message: String) -> PyErr {
    PyValueError::new_err(message)
}

fn column<T: Element + Copy>(
    py: Python<'_>,
    columns: &Bound<'_, PyDict>,
    name: &str,
) -> PyResult<Vec<T>> {
    let obj = columns
        .get_item(name)?
        .ok_or_else(|| PyKeyError::new_err(format!("missing column {name:?}")))?;
    let buffer = PyBuffer::<T>::get(&obj).map_err(|e| {
        value_error(format!(
            "column {name:?} must be a buffer of {} ({e})",
            std::any::type_name::<T>()
        ))
    })?;
    buffer.to_vec(py)
}

/// A flag column: uint8 0/1, or a NumPy bool array (read as its bytes).
fn flags(py: Python<'_>, columns: &Bound<'_, PyDict>, name: &str) -> PyResult<Vec<bool>> {
    let obj = columns
        .get_item(name)?
        .ok_or_else(|| PyKeyError::new_err(format!("missing column {name:?}")))?;
    let obj = if PyBuffer::<u8>::get(&obj).is_ok() {
        obj
    } else {
        obj.call_method1("view", ("u1",))?
    };
    let bytes: Vec<u8> = PyBuffer::<u8>::get(&obj)
        .map_err(|e| value_error(format!("column {name:?} must be uint8 or bool ({e})")))?
        .to_vec(py)?;
    bytes
        .into_iter()
        .enumerate()
        .map(|(row, b)| match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(value_error(format!(
                "column {name:?} row {row}: flag {b} is neither 0 nor 1"
            ))),
        })
        .collect()
}

fn rows_from(py: Python<'_>, c: &Bound<'_, PyDict>) -> PyResult<Rows> {
    Ok(Rows {
        key: column(py, c, "key")?,
        kind: column(py, c, "kind")?,
        msg_end: flags(py, c, "msg_end")?,
        event_time_ns: column(py, c, "event_time_ns")?,
        side: column(py, c, "side")?,
        price_m: column(py, c, "price_m")?,
        price_e: column(py, c, "price_e")?,
        size_m: column(py, c, "size_m")?,
        size_e: column(py, c, "size_e")?,
        ask_price_m: column(py, c, "ask_price_m")?,
        ask_price_e: column(py, c, "ask_price_e")?,
        ask_size_m: column(py, c, "ask_size_m")?,
        ask_size_e: column(py, c, "ask_size_e")?,
        first_update_id: column(py, c, "first_update_id")?,
        final_update_id: column(py, c, "final_update_id")?,
        final_update_id_valid: flags(py, c, "final_update_id_valid")?,
        previous_update_id: column(py, c, "previous_update_id")?,
        previous_update_id_valid: flags(py, c, "previous_update_id_valid")?,
        aggressor: column(py, c, "aggressor")?,
    })
}

fn level((price, size): Level) -> PyLevel {
    (price.mantissa, price.exponent, size.mantissa, size.exponent)
}

fn outcome(o: &Outcome) -> PyOutcome {
    let cause = o.cause.map_or(0, |c| c as u8);
    (
        o.status as u8,
        cause,
        o.expected_update_id,
        o.received_update_id,
        o.replayed,
        o.during_replay,
    )
}

fn fallback(code: u8) -> PyResult<Fallback> {
    match code {
        0 => Ok(Fallback::None),
        1 => Ok(Fallback::OutOfSync),
        2 => Ok(Fallback::Stale),
        _ => Err(value_error(format!("unknown fallback {code}"))),
    }
}

/// The session's market side (books, views, the venue's view of the book) fed with columnar rows.
#[pyclass(module = "cse_core._core", name = "MarketCore")]
pub struct PyMarketCore {
    core: Core,
    gate: Gate,
}

impl PyMarketCore {
    fn slot(&self, key: u32) -> PyResult<&Slot> {
        self.core
            .slot(key)
            .ok_or_else(|| PyKeyError::new_err(format!("unknown key {key}")))
    }

    fn book(&self, key: u32) -> PyResult<Option<&SyncedBook>> {
        Ok(self.slot(key)?.book.as_ref())
    }
}

/// (start row, end row, key, kind, event time, outcome or None, venue changed)
type PyMessage = (u64, u64, u32, i8, i64, Option<PyOutcome>, bool);

fn message(m: &Message) -> PyMessage {
    (
        m.start,
        m.end,
        m.key,
        m.kind,
        m.event_time_ns,
        m.outcome.as_ref().map(outcome),
        m.venue_changed,
    )
}

#[pymethods]
impl PyMarketCore {
    #[new]
    fn new() -> Self {
        PyMarketCore {
            core: Core::new(),
            gate: Gate::new(),
        }
    }

    /// The integer key of (venue, instrument), registered on first use.
    fn add_key(&mut self, venue: &str, instrument: &str) -> u32 {
        self.core.add_key(venue, instrument)
    }

    /// [(venue, instrument)] by key.
    fn keys(&self) -> Vec<(String, String)> {
        self.core
            .slots
            .iter()
            .map(|s| (s.venue.clone(), s.instrument.clone()))
            .collect()
    }

    /// Keep the simulated venue's own view of `key`'s book from now on.
    fn track_venue(&mut self, key: u32) -> PyResult<()> {
        self.core.track_venue(key).map_err(value_error)
    }

    /// Queue a batch of rows: a mapping column name -> buffer (see `_core.pyi`).
    fn append(&mut self, py: Python<'_>, columns: &Bound<'_, PyDict>) -> PyResult<()> {
        let rows = rows_from(py, columns)?;
        self.core.append(rows).map_err(value_error)
    }

    /// Apply the next whole message; None when no rows are queued.
    fn step(&mut self) -> Option<PyMessage> {
        self.core.step().as_ref().map(message)
    }

    /// The next message's (kind, key, event time) without applying it; None when no rows are queued.
    fn peek(&self) -> Option<(i8, u32, i64)> {
        self.core.peek()
    }

    /// Apply every queued message; returns how many.
    fn run_all(&mut self, py: Python<'_>) -> u64 {
        let core = &mut self.core;
        py.detach(|| {
            let mut n = 0;
            while core.step().is_some() {
                n += 1;
            }
            n
        })
    }

    #[getter]
    fn position(&self) -> u64 {
        self.core.position()
    }

    #[getter]
    fn pending_rows(&self) -> u64 {
        self.core.pending_rows()
    }

    #[getter]
    fn messages(&self) -> u64 {
        self.core.messages
    }

    /// A `BookResyncNeeded` (recorded or derived): the view's book of `key` waits for the next snapshot.
    fn mark_out_of_sync(&mut self, key: u32) -> PyResult<()> {
        self.core.mark_out_of_sync(key).map_err(value_error)
    }

    /// Row of the view's last quote / priced quote / valid quote / prior valid quote / trade of `key`.
    fn view_row(&self, key: u32, which: &str) -> PyResult<Option<u64>> {
        let v = &self.slot(key)?.view;
        let quote = |q: &Option<Quote>| q.map(|q| q.row);
        match which {
            "quote" => Ok(quote(&v.quote)),
            "priced_quote" => Ok(quote(&v.priced_quote)),
            "valid_quote" => Ok(quote(&v.valid_quote)),
            "prior_valid_quote" => Ok(quote(&v.prior_valid_quote)),
            "trade" => Ok(v.trade.map(|t: Trade| t.row)),
            _ => Err(value_error(format!("unknown view {which:?}"))),
        }
    }

    /// (in_sync, has_snapshot, awaiting_first_delta, applied_update_id, applied_time_ns, deltas_applied,
    /// buffered, buffer_overflows) of the view's book, None before the key's first book event.
    #[allow(clippy::type_complexity)]
    fn book_state(
        &self,
        key: u32,
    ) -> PyResult<Option<(bool, bool, bool, i64, i64, u64, usize, u64)>> {
        Ok(self.book(key)?.map(|b| {
            (
                b.in_sync,
                b.has_snapshot,
                b.awaiting_first_delta,
                b.applied_update_id,
                b.applied_time_ns,
                b.deltas_applied,
                b.buffer.len(),
                b.buffer_overflows,
            )
        }))
    }

    /// What applying the key's last book event did: (status, cause, expected, received, replayed, during
    /// replay); status 0 applied, 1 buffered, 2 stale, 3 out of sync; cause 0 none, 1 gap, 2 crossed, 3 invalid.
    fn book_outcome(&self, key: u32) -> PyResult<Option<PyOutcome>> {
        Ok(self.slot(key)?.outcome.as_ref().map(outcome))
    }

    /// The view's book levels of one side, best first (at most `depth`).
    #[pyo3(signature = (key, is_bid, depth=None))]
    fn book_levels(&self, key: u32, is_bid: bool, depth: Option<usize>) -> PyResult<Vec<PyLevel>> {
        let Some(book) = self.book(key)? else {
            return Ok(Vec::new());
        };
        Ok(book
            .side(is_bid)
            .walk()
            .take(depth.unwrap_or(usize::MAX))
            .map(level)
            .collect())
    }

    /// Why the venue must not match against its L2 book of `key` now: 0 it may, 1 out of sync, 2 older
    /// than the ticker.
    fn venue_fallback(&self, key: u32) -> PyResult<u8> {
        let venue = self.venue(key)?;
        Ok(venue.fallback() as u8)
    }

    /// The liquidity the venue matches against on one side, best first, given the fallback.
    #[pyo3(signature = (key, is_bid, fallback, depth=None))]
    fn venue_levels(
        &self,
        key: u32,
        is_bid: bool,
        fallback: u8,
        depth: Option<usize>,
    ) -> PyResult<Vec<PyLevel>> {
        let venue = self.venue(key)?;
        let fb = self::fallback(fallback)?;
        Ok(venue
            .levels(is_bid, fb)
            .take(depth.unwrap_or(usize::MAX))
            .map(level)
            .collect())
    }

    /// Recorded quantity at a price (mantissa, exponent) on one side; None when the venue's view does not
    /// reach that deep.
    fn venue_quantity_at(
        &self,
        key: u32,
        is_bid: bool,
        price: (i64, i8),
        fallback: u8,
    ) -> PyResult<Option<(i64, i8)>> {
        let venue = self.venue(key)?;
        let q = venue.quantity_at(
            is_bid,
            Amount::new(price.0, price.1),
            self::fallback(fallback)?,
        );
        Ok(q.map(|a| (a.mantissa, a.exponent)))
    }

    /// Row of the ticker the venue last accepted for `key`.
    fn venue_quote_row(&self, key: u32) -> PyResult<Option<u64>> {
        Ok(self.venue(key)?.quote.map(|q| q.row))
    }

    /// Replace an owner's wake spec: predicates as tuples (see `_core.pyi`), keys as registered ints.
    #[pyo3(signature = (owner, predicates, not_before_ns=None, timer_at_ns=None))]
    fn set_wake(
        &mut self,
        owner: usize,
        predicates: Vec<Bound<'_, PyAny>>,
        not_before_ns: Option<i64>,
        timer_at_ns: Option<i64>,
    ) -> PyResult<()> {
        let predicates = predicates
            .iter()
            .map(|p| self.predicate(p))
            .collect::<PyResult<Vec<_>>>()?;
        self.gate.set(
            owner,
            Spec {
                predicates,
                not_before_ns,
                timer_at_ns,
            },
        );
        Ok(())
    }

    /// Run messages until one must reach Python and hold it unapplied: returns (ordinal, start row, end row,
    /// key, kind, event time), or None at the end of the queued rows. With `budget`, at most that many
    /// messages are run; then the answer is the string "budget" (call again to go on).
    #[pyo3(signature = (budget=None))]
    fn next_wake<'py>(
        &mut self,
        py: Python<'py>,
        budget: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (core, gate) = (&mut self.core, &mut self.gate);
        let result = py.detach(|| gate.next_wake(core, budget));
        match result {
            Run::Budget => Ok("budget".into_pyobject(py)?.into_any()),
            Run::End => Ok(py.None().into_bound(py)),
            Run::Wake(ordinal) => {
                let m = &self
                    .gate
                    .held
                    .as_ref()
                    .expect("a wake holds its message")
                    .message;
                Ok((ordinal, m.start, m.end, m.key, m.kind, m.event_time_ns)
                    .into_pyobject(py)?
                    .into_any())
            }
        }
    }

    /// Fold the held message into the view (the kernel applies the returned row); None when none is held.
    fn apply_held(&mut self) -> Option<PyMessage> {
        self.gate.apply_held(&mut self.core).as_ref().map(message)
    }

    /// Apply the held message to the simulated venue's view of its key only (once): whether the venue's
    /// matchable liquidity may have changed; None when nothing is held.
    fn apply_held_venue(&mut self) -> Option<bool> {
        self.gate.apply_held_venue(&mut self.core)
    }

    /// Whether applying the held message would put its book out of sync (the reference then words why).
    fn held_out_of_sync(&self) -> bool {
        self.gate
            .held
            .as_ref()
            .is_some_and(|held| goes_out_of_sync(&self.core, held))
    }

    /// Also return every book message that would put its book out of sync (see `Gate::wake_out_of_sync`).
    #[setter]
    fn set_wake_out_of_sync(&mut self, on: bool) {
        self.gate.wake_out_of_sync = on;
    }

    /// The deltas the view's book of `key` holds until its next snapshot: (first, final, previous or None,
    /// bids, asks), oldest first.
    #[allow(clippy::type_complexity)]
    fn book_buffer(
        &self,
        key: u32,
    ) -> PyResult<Vec<(i64, i64, Option<i64>, Vec<PyLevel>, Vec<PyLevel>)>> {
        let Some(book) = self.book(key)? else {
            return Ok(Vec::new());
        };
        Ok(book
            .buffer
            .iter()
            .map(|d| {
                let side = |levels: &[Level]| levels.iter().copied().map(level).collect();
                (
                    d.first_update_id,
                    d.final_update_id,
                    d.previous_final_update_id,
                    side(&d.bids),
                    side(&d.asks),
                )
            })
            .collect())
    }

    /// Ordinal of the held message, if any.
    #[getter]
    fn held(&self) -> Option<u64> {
        self.gate.held.as_ref().map(|_| self.gate.ordinal - 1)
    }

    /// Market messages run without returning to Python.
    #[getter]
    fn skipped(&self) -> u64 {
        self.gate.skipped
    }

    /// Event time of the last message run (skipped or returned); -1 before the first.
    #[getter]
    fn last_time_ns(&self) -> i64 {
        self.gate.last_time_ns
    }

    /// The core's state as bytes, with the gate's counters (a worker's snapshot): taken between wakes, with
    /// every queued row run. Wake specs are not part of it: their owners declare them again.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let gate = &self.gate;
        if gate.held.is_some() || self.core.pending_rows() > 0 {
            return Err(value_error(
                "a market core snapshot is taken between wakes, with no row held or queued"
                    .to_owned(),
            ));
        }
        let bytes = cse_market::codec::encode(&self.core, |w| {
            w.put_u64(gate.skipped);
            w.put_i64(gate.last_time_ns);
            w.put_u64(gate.ordinal);
            w.put_u8(gate.wake_out_of_sync as u8);
        });
        Ok(PyBytes::new(py, &bytes))
    }

    /// A core from `snapshot()` bytes: it continues at the row position and message ordinal it had, with no
    /// wake specs (declare them before `next_wake`).
    #[staticmethod]
    fn restore(data: &[u8]) -> PyResult<Self> {
        let (core, gate) = cse_market::codec::decode(data, |r| {
            Ok(Gate {
                skipped: r.get_u64()?,
                last_time_ns: r.get_i64()?,
                ordinal: r.get_u64()?,
                wake_out_of_sync: r.get_u8()? != 0,
                ..Gate::new()
            })
        })
        .map_err(value_error)?;
        Ok(PyMarketCore { core, gate })
    }

    /// Pickling goes through `snapshot`/`restore` (a worker pickles its kernels, this core among them).
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let restore = slf.get_type().getattr("restore")?;
        let bytes = slf.borrow().snapshot(slf.py())?;
        Ok((restore, (bytes,)))
    }
}

fn ratio(pair: (i128, i128)) -> PyResult<Ratio> {
    if pair.1 <= 0 {
        return Err(value_error(format!(
            "ratio {}/{} needs a positive denominator",
            pair.0, pair.1
        )));
    }
    Ok(Ratio {
        num: pair.0,
        den: pair.1,
    })
}

impl PyMarketCore {
    fn check_key(&self, key: u32) -> PyResult<u32> {
        self.slot(key).map(|_| key)
    }

    fn keys_of(&self, keys: Option<Vec<u32>>) -> PyResult<Option<Vec<u32>>> {
        keys.map(|k| k.into_iter().map(|key| self.check_key(key)).collect())
            .transpose()
    }

    fn predicate(&self, p: &Bound<'_, PyAny>) -> PyResult<Predicate> {
        let kind: String = p.get_item(0)?.extract()?;
        Ok(match kind.as_str() {
            "never" => Predicate::Never,
            "always" => {
                let (_, kinds, keys): (String, u8, Option<Vec<u32>>) = p.extract()?;
                Predicate::Always {
                    kinds,
                    keys: self.keys_of(keys)?,
                }
            }
            "cross" => {
                #[allow(clippy::type_complexity)]
                let (_, instrument, hurdles, max_age_ns, min_size): (
                    String,
                    String,
                    Vec<(u32, u32, i128, i128)>,
                    i64,
                    (i128, i128),
                ) = p.extract()?;
                let hurdles = hurdles
                    .into_iter()
                    .map(|(buy, sell, num, den)| {
                        Ok(Hurdle {
                            buy_key: self.check_key(buy)?,
                            sell_key: self.check_key(sell)?,
                            bps: ratio((num, den))?,
                        })
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                Predicate::CrossEdge {
                    instrument,
                    hurdles,
                    max_age_ns,
                    min_size: ratio(min_size)?,
                }
            }
            "not_clean" => {
                let (_, keys): (String, Option<Vec<u32>>) = p.extract()?;
                Predicate::BookNotClean {
                    keys: self.keys_of(keys)?,
                }
            }
            "touched" => {
                #[allow(clippy::type_complexity)]
                let (_, key, below, above): (
                    String,
                    u32,
                    Option<(i128, i128)>,
                    Option<(i128, i128)>,
                ) = p.extract()?;
                Predicate::LevelTouched {
                    key: self.check_key(key)?,
                    at_or_below: below.map(ratio).transpose()?,
                    at_or_above: above.map(ratio).transpose()?,
                }
            }
            other => return Err(value_error(format!("unknown wake predicate {other:?}"))),
        })
    }

    fn venue(&self, key: u32) -> PyResult<&cse_market::venue::VenueBook> {
        self.slot(key)?.venue_book.as_ref().ok_or_else(|| {
            value_error(format!(
                "key {key} is not tracked for a venue (track_venue)"
            ))
        })
    }
}

/// The bytes of a column of plain numbers (native byte order, what `numpy.frombuffer` reads).
fn bytes_of<T: Copy>(values: &[T]) -> &[u8] {
    // SAFETY: T is one of the integer types of `Capture`'s columns (no padding, every byte initialised);
    // the slice borrows `values` for its lifetime.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

/// The columns of a parsed capture by name, as bytes.
fn capture_columns(c: &Capture) -> [(&'static str, &[u8]); 29] {
    [
        ("msg_symbol", bytes_of(&c.msg_symbol)),
        ("msg_kind", bytes_of(&c.msg_kind)),
        ("msg_time_ns", bytes_of(&c.msg_time_ns)),
        ("msg_rows", bytes_of(&c.msg_rows)),
        ("kind", bytes_of(&c.kind)),
        ("msg_end", &c.msg_end),
        ("time_ns", bytes_of(&c.time_ns)),
        ("exchange_time_ns", bytes_of(&c.exchange_time_ns)),
        ("exchange_time_valid", &c.exchange_time_valid),
        ("side", bytes_of(&c.side)),
        ("price_m", bytes_of(&c.price_m)),
        ("price_e", bytes_of(&c.price_e)),
        ("size_m", bytes_of(&c.size_m)),
        ("size_e", bytes_of(&c.size_e)),
        ("ask_price_m", bytes_of(&c.ask_price_m)),
        ("ask_price_e", bytes_of(&c.ask_price_e)),
        ("ask_size_m", bytes_of(&c.ask_size_m)),
        ("ask_size_e", bytes_of(&c.ask_size_e)),
        ("first_update_id", bytes_of(&c.first_update_id)),
        ("first_update_id_valid", &c.first_update_id_valid),
        ("final_update_id", bytes_of(&c.final_update_id)),
        ("final_update_id_valid", &c.final_update_id_valid),
        ("previous_update_id", bytes_of(&c.previous_update_id)),
        ("previous_update_id_valid", &c.previous_update_id_valid),
        ("trade_id_offsets", bytes_of(&c.trade_id_offsets)),
        ("trade_id_data", &c.trade_id_data),
        ("trade_id_valid", &c.trade_id_valid),
        ("aggressor", bytes_of(&c.aggressor)),
        ("probe_symbols", bytes_of(&c.probe_symbols)),
    ]
}

/// One column of a parsed capture lent to Python without a copy: read-only bytes (buffer protocol) that
/// keep the whole capture alive while anything (a NumPy or Arrow array) still uses them.
#[pyclass(module = "cse_core._core", name = "CaptureColumn", frozen)]
struct CaptureColumn {
    capture: Arc<Capture>,
    column: usize,
}

#[pymethods]
impl CaptureColumn {
    /// # Safety
    /// Called by Python with a valid `view`; it fills it to point into the capture `slf` keeps alive (the
    /// view holds a reference to `slf` until `PyBuffer_Release`), read-only, bytes ("B").
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: std::ffi::c_int,
    ) -> PyResult<()> {
        use pyo3::ffi;
        if view.is_null() {
            return Err(PyBufferError::new_err("View is null"));
        }
        if (flags & ffi::PyBUF_WRITABLE) == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err("capture columns are read-only"));
        }
        let this = slf.get();
        let data = capture_columns(&this.capture)[this.column].1;
        // SAFETY: `view` is a valid, writable Py_buffer (checked not null above); `data` lives as long as
        // the Arc in `slf`, which the view owns through `obj`.
        unsafe {
            (*view).buf = data.as_ptr() as *mut std::ffi::c_void;
            (*view).len = data.len() as isize;
            (*view).readonly = 1;
            (*view).itemsize = 1;
            (*view).format = if (flags & ffi::PyBUF_FORMAT) == ffi::PyBUF_FORMAT {
                c"B".as_ptr() as *mut std::ffi::c_char
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = 1;
            (*view).shape = if (flags & ffi::PyBUF_ND) == ffi::PyBUF_ND {
                &mut (*view).len
            } else {
                std::ptr::null_mut()
            };
            (*view).strides = if (flags & ffi::PyBUF_STRIDES) == ffi::PyBUF_STRIDES {
                &mut (*view).itemsize
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
            (*view).obj = slf.into_any().into_ptr();
        }
        Ok(())
    }

    /// # Safety
    /// Nothing was allocated for the view (its format is a static string).
    unsafe fn __releasebuffer__(&self, _view: *mut pyo3::ffi::Py_buffer) {}
}

/// A Binance websocket capture (gzip) parsed into columnar rows (`cse_market::capture`): a dict of its
/// columns (`CaptureColumn`s: bytes without a copy) plus `symbols` and `probe`; or `(line, reason)` when
/// the fast path does not vouch for the file (the importer then runs its Python path).
#[pyfunction]
fn read_binance_capture<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    probe_lines: u64,
) -> PyResult<Bound<'py, PyAny>> {
    let capture = match py.detach(|| cse_market::capture::read(&path, probe_lines)) {
        Ok(capture) => Arc::new(capture),
        Err(unproven) => return Ok((unproven.line, unproven.what).into_pyobject(py)?.into_any()),
    };
    let out = PyDict::new(py);
    for (column, (name, _)) in capture_columns(&capture).iter().enumerate() {
        let lent = CaptureColumn {
            capture: Arc::clone(&capture),
            column,
        };
        out.set_item(*name, Bound::new(py, lent)?)?;
    }
    match &capture.probe_body {
        Some(body) => out.set_item("probe", PyBytes::new(py, body))?,
        None => out.set_item("probe", py.None())?,
    }
    let symbols = PyList::empty(py);
    for symbol in &capture.symbols {
        match symbol {
            Some(text) => symbols.append(PyBytes::new(py, text))?,
            None => symbols.append(py.None())?,
        }
    }
    out.set_item("symbols", symbols)?;
    Ok(out.into_any())
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMarketCore>()?;
    m.add_class::<CaptureColumn>()?;
    m.add_function(wrap_pyfunction!(read_binance_capture, m)?)?;
    m.add("FORMAT", "cse-market/1")?;
    Ok(())
}
