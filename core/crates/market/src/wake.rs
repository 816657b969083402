//! Wake conditions, evaluated in Rust: the closed set of predicate kinds of `domain/wake.py` (the reference
//! evaluator and the contract), and the gate that runs messages until some owner's spec is true on one.
//!
//! ```text
//! wake = (timer_at_ns is set and t >= timer_at_ns)
//!        or ((not_before_ns unset or t >= not_before_ns) and any predicate holds on the message)
//! ```
//!
//! evaluated against the market view *before* the message. Every comparison is exact integer arithmetic
//! (i128, checked); where a product would overflow, the predicate answers true: a wake may be looser than the
//! reference, never stricter.

use std::cmp::Ordering;

use crate::amount::Amount;
use crate::book::{Status, SyncedBook};
use crate::core::{Body, Core, Pending};
use crate::rows::KIND_EVENT;
use crate::view::Quote;

/// An exact rational num/den, den > 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    pub num: i128,
    pub den: i128,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hurdle {
    pub buy_key: u32,
    pub sell_key: u32,
    /// Net edge in bps of the buy price that must be strictly exceeded.
    pub bps: Ratio,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Predicate {
    Never,
    /// Market kinds as a bit mask (bit `kind`; 0: any market kind) and keys (None: any key).
    Always {
        kinds: u8,
        keys: Option<Vec<u32>>,
    },
    CrossEdge {
        instrument: String,
        hurdles: Vec<Hurdle>,
        max_age_ns: i64,
        min_size: Ratio,
    },
    BookNotClean {
        keys: Option<Vec<u32>>,
    },
    LevelTouched {
        key: u32,
        at_or_below: Option<Ratio>,
        at_or_above: Option<Ratio>,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    pub predicates: Vec<Predicate>,
    pub not_before_ns: Option<i64>,
    pub timer_at_ns: Option<i64>,
}

impl Spec {
    /// `domain.wake.ALWAYS`: every owner starts with it.
    pub fn always() -> Self {
        Spec {
            predicates: vec![Predicate::Always {
                kinds: 0,
                keys: None,
            }],
            ..Spec::default()
        }
    }
}

const POW10: [i128; 39] = {
    let mut table = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

fn pow10(n: i32) -> Option<i128> {
    usize::try_from(n).ok().and_then(|i| POW10.get(i).copied())
}

/// `amount` in units of 10^scale (scale <= its exponent); None on overflow.
fn at_scale(amount: Amount, scale: i32) -> Option<i128> {
    if amount.mantissa == 0 {
        return Some(0);
    }
    (amount.mantissa as i128).checked_mul(pow10(amount.exponent as i32 - scale)?)
}

/// Exact order of `amount` against num/den; None when a product overflows.
pub fn cmp_ratio(amount: Amount, ratio: Ratio) -> Option<Ordering> {
    let e = amount.exponent as i32;
    let (lhs, rhs) = if e >= 0 {
        (at_scale(amount, 0)?.checked_mul(ratio.den)?, ratio.num)
    } else {
        (
            (amount.mantissa as i128).checked_mul(ratio.den)?,
            ratio.num.checked_mul(pow10(-e)?)?,
        )
    };
    Some(lhs.cmp(&rhs))
}

/// (bid - ask) * 10_000 * den > num * ask, exactly; None when a product overflows.
fn edge_above(bid: Amount, ask: Amount, hurdle: Ratio) -> Option<bool> {
    let scale = (bid.exponent as i32).min(ask.exponent as i32);
    let (b, a) = (at_scale(bid, scale)?, at_scale(ask, scale)?);
    let lhs = b
        .checked_sub(a)?
        .checked_mul(10_000)?
        .checked_mul(hurdle.den)?;
    Some(lhs > hurdle.num.checked_mul(a)?)
}

fn usable(quote: Option<&Quote>, now: i64, max_age_ns: i64) -> Option<&Quote> {
    let q = quote?;
    let fresh = (now as i128 - q.event_time_ns as i128) <= max_age_ns as i128;
    let ok = q.bid_price.is_positive()
        && q.ask_price.is_positive()
        && !q.bid_size.is_negative()
        && !q.ask_size.is_negative()
        && fresh;
    ok.then_some(q)
}

fn in_keys(keys: &Option<Vec<u32>>, key: u32) -> bool {
    keys.as_ref().is_none_or(|k| k.contains(&key))
}

fn holds(predicate: &Predicate, core: &Core, pending: &Pending) -> bool {
    let message = &pending.message;
    match predicate {
        Predicate::Never => false,
        Predicate::Always { kinds, keys } => {
            (*kinds == 0 || kinds & (1 << message.kind) != 0) && in_keys(keys, message.key)
        }
        Predicate::CrossEdge {
            instrument,
            hurdles,
            max_age_ns,
            min_size,
        } => {
            let Body::Quote(row) = &pending.body else {
                return false;
            };
            if core.slots[message.key as usize].instrument != *instrument {
                return false;
            }
            let now = message.event_time_ns;
            let quote = |key: u32| {
                let q = if key == message.key {
                    Some(row)
                } else {
                    core.slots[key as usize].view.quote.as_ref()
                };
                usable(q, now, *max_age_ns)
            };
            hurdles.iter().any(|h| {
                let (Some(buy), Some(sell)) = (quote(h.buy_key), quote(h.sell_key)) else {
                    return false;
                };
                let big_enough =
                    |size: Amount| cmp_ratio(size, *min_size).is_none_or(|o| o != Ordering::Less);
                big_enough(buy.ask_size)
                    && big_enough(sell.bid_size)
                    && edge_above(sell.bid_price, buy.ask_price, h.bps).unwrap_or(true)
            })
        }
        Predicate::BookNotClean { keys } => {
            if !in_keys(keys, message.key) {
                return false;
            }
            let book = core.slots[message.key as usize].book.as_ref();
            let status = match &pending.body {
                Body::Delta(delta) => {
                    book.map_or(Status::Buffered, |b| b.check_delta(delta).status)
                }
                Body::Snapshot(snapshot) => match book {
                    Some(b) => b.check_snapshot(snapshot).status,
                    None => SyncedBook::new().check_snapshot(snapshot).status,
                },
                _ => return false,
            };
            status == Status::OutOfSync
        }
        Predicate::LevelTouched {
            key,
            at_or_below,
            at_or_above,
        } => {
            if message.key != *key {
                return false;
            }
            let Body::Delta(delta) = &pending.body else {
                return message.kind != KIND_EVENT;
            };
            delta.bids.iter().chain(&delta.asks).any(|(price, _)| {
                let below = at_or_below
                    .is_some_and(|r| cmp_ratio(*price, r).is_none_or(|o| o != Ordering::Greater));
                let above = at_or_above
                    .is_some_and(|r| cmp_ratio(*price, r).is_none_or(|o| o != Ordering::Less));
                below || above
            })
        }
    }
}

/// Whether applying the message would put its key's book out of sync (the view's book, or a new one).
pub fn goes_out_of_sync(core: &Core, pending: &Pending) -> bool {
    let book = core.slots[pending.message.key as usize].book.as_ref();
    let status = match &pending.body {
        Body::Delta(delta) => book.map_or(Status::Buffered, |b| b.check_delta(delta).status),
        Body::Snapshot(snapshot) => match book {
            Some(b) => b.check_snapshot(snapshot).status,
            None => SyncedBook::new().check_snapshot(snapshot).status,
        },
        _ => return false,
    };
    status == Status::OutOfSync
}

/// Whether `spec` wakes its owner on the pending message (a market message), the view as before it.
pub fn evaluate(spec: &Spec, core: &Core, pending: &Pending) -> bool {
    let time = pending.message.event_time_ns;
    if spec.timer_at_ns.is_some_and(|t| time >= t) {
        return true;
    }
    if spec.not_before_ns.is_some_and(|t| time < t) {
        return false;
    }
    spec.predicates.iter().any(|p| holds(p, core, pending))
}

/// How `Gate::next_wake` stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    /// A message must reach Python: its ordinal (it is held, unapplied).
    Wake(u64),
    /// No rows are left.
    End,
    /// The message budget ran out; call again to go on.
    Budget,
}

/// The run loop's market side: owners' specs, and the message handed to Python (held unapplied until the
/// kernel folds it into the view).
#[derive(Clone, Debug, Default)]
pub struct Gate {
    pub specs: Vec<Spec>,
    pub held: Option<Pending>,
    /// The held message's venue part, when the venue took it already (`apply_held_venue`): its answer.
    pub held_venue: Option<bool>,
    /// Market messages applied without returning to Python.
    pub skipped: u64,
    /// Event time of the last message run (skipped or returned); -1 before the first.
    pub last_time_ns: i64,
    /// Messages read so far (skipped, returned), i.e. the ordinal of the next one.
    pub ordinal: u64,
    /// Also return every book message that puts its book out of sync (a looser gate: Python then words the
    /// outcome with the reference rules on the book as it was just before).
    pub wake_out_of_sync: bool,
}

impl Gate {
    pub fn new() -> Self {
        Gate {
            last_time_ns: -1,
            ..Gate::default()
        }
    }

    /// Replace an owner's spec (owners up to it that never declared one get `Spec::always`).
    pub fn set(&mut self, owner: usize, spec: Spec) {
        while self.specs.len() <= owner {
            self.specs.push(Spec::always());
        }
        self.specs[owner] = spec;
    }

    /// Run messages until one must reach Python (a non-market event, or some spec true on it) and hold it;
    /// returns its ordinal, or None when no rows are left. A message still held is dropped unapplied (the
    /// kernel did not fold it into the view). At most `budget` messages are run (None: no limit).
    pub fn next_wake(&mut self, core: &mut Core, budget: Option<u64>) -> Run {
        if let Some(held) = self.held.take() {
            core.skip_rows(held.rows);
        }
        self.held_venue = None;
        let mut left = budget.unwrap_or(u64::MAX);
        while let Some(pending) = core.read_next() {
            if left == 0 {
                return Run::Budget;
            }
            left -= 1;
            let ordinal = self.ordinal;
            self.ordinal += 1;
            self.last_time_ns = pending.message.event_time_ns;
            let wake = pending.message.kind == KIND_EVENT
                || self.specs.iter().any(|s| evaluate(s, core, &pending))
                || (self.wake_out_of_sync && goes_out_of_sync(core, &pending));
            if wake {
                self.held = Some(pending);
                return Run::Wake(ordinal);
            }
            core.apply(pending);
            self.skipped += 1;
        }
        Run::End
    }

    /// Fold the held message into the view (the kernel's `view.apply` of the returned row).
    pub fn apply_held(&mut self, core: &mut Core) -> Option<crate::core::Message> {
        let venue = self.held_venue.take();
        self.held
            .take()
            .map(|pending| core.apply_with(pending, venue))
    }

    /// Apply the held message to the simulated venue's view only (the venue sees a row before the market
    /// view does, `Kernel.feed`); once per message. Whether its matchable liquidity may have changed; None
    /// when nothing is held.
    pub fn apply_held_venue(&mut self, core: &mut Core) -> Option<bool> {
        let pending = self.held.as_ref()?;
        if self.held_venue.is_none() {
            self.held_venue = Some(core.apply_venue(pending));
        }
        self.held_venue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(m: i64, e: i8) -> Amount {
        Amount::new(m, e)
    }

    #[test]
    fn ratios_by_hand() {
        let third = Ratio { num: 1, den: 3 };
        assert_eq!(cmp_ratio(a(333, -3), third), Some(Ordering::Less));
        assert_eq!(cmp_ratio(a(334, -3), third), Some(Ordering::Greater));
        assert_eq!(
            cmp_ratio(a(5, 0), Ratio { num: 10, den: 2 }),
            Some(Ordering::Equal)
        );
        assert_eq!(cmp_ratio(a(5, 40), Ratio { num: 1, den: 1 }), None);
        // 3.2 bps hurdle: bid 100.032, ask 100 is exactly on it (not above); 100.0321 is above.
        let hurdle = Ratio { num: 16, den: 5 };
        assert_eq!(edge_above(a(100032, -3), a(100, 0), hurdle), Some(false));
        assert_eq!(edge_above(a(1000321, -4), a(100, 0), hurdle), Some(true));
    }

    proptest! {
        #[test]
        fn ratio_order_is_exact(m in -1_000_000i64..1_000_000, e in -6i8..6, num in -1_000_000i128..1_000_000, den in 1i128..1000) {
            // Reference: both sides as exact fractions over 10^12.
            let lhs = (m as i128) * 10i128.pow((e as i32 + 12) as u32) * den;
            let rhs = num * 10i128.pow(12);
            prop_assert_eq!(cmp_ratio(a(m, e), Ratio { num, den }), Some(lhs.cmp(&rhs)));
        }
    }
}
