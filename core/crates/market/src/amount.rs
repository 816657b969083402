//! Exact decimal amounts as (int64 mantissa, int8 exponent): value = mantissa x 10^exponent.
//!
//! The representation is kept as received (Python rebuilds `Decimal(m).scaleb(e)`, whose exponent the digest
//! sees), while equality and order are by value, exactly (`61800.30` == `61800.3`), so an `Amount` can key a
//! `BTreeMap` the way a `Decimal` keys a Python dict: an update at an equal price keeps the first key.

use std::cmp::Ordering;

#[derive(Clone, Copy, Debug, Default)]
pub struct Amount {
    pub mantissa: i64,
    pub exponent: i8,
}

/// Powers of ten that fit in an i128 next to an i64 factor (10^19 x 9.3e18 < 1.7e38).
const POW10: [i128; 20] = {
    let mut table = [1i128; 20];
    let mut i = 1;
    while i < 20 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

impl Amount {
    pub const ZERO: Amount = Amount {
        mantissa: 0,
        exponent: 0,
    };

    pub const fn new(mantissa: i64, exponent: i8) -> Self {
        Amount { mantissa, exponent }
    }

    pub fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    pub fn is_positive(self) -> bool {
        self.mantissa > 0
    }

    pub fn is_negative(self) -> bool {
        self.mantissa < 0
    }

    /// Same value and same written form (what the digest would see).
    pub fn same_repr(self, other: Amount) -> bool {
        self.mantissa == other.mantissa && self.exponent == other.exponent
    }

    /// Position of the leading digit: |value| lies in [10^adjusted, 10^(adjusted+1)). Only for non-zero values.
    fn adjusted(self) -> i32 {
        let digits = self.mantissa.unsigned_abs().ilog10() as i32;
        digits + self.exponent as i32
    }

    /// Exact comparison by value.
    pub fn cmp_value(self, other: Amount) -> Ordering {
        // Fast paths (a book's prices mostly share an exponent): exponents within 19 of each other fit an
        // i128 at the smaller one.
        let gap = self.exponent as i32 - other.exponent as i32;
        if gap == 0 {
            return self.mantissa.cmp(&other.mantissa);
        }
        if gap.abs() <= 19 {
            let scale = self.exponent.min(other.exponent);
            return scaled(self, scale).cmp(&scaled(other, scale));
        }
        let (a, b) = (self.mantissa.signum(), other.mantissa.signum());
        if a != b || a == 0 {
            return a.cmp(&b);
        }
        // Same sign, both non-zero: a different leading-digit position decides; otherwise the exponents
        // differ by at most 18 and both values fit an i128 at the smaller exponent.
        let (adj_a, adj_b) = (self.adjusted(), other.adjusted());
        if adj_a != adj_b {
            let magnitude = adj_a.cmp(&adj_b);
            return if a > 0 {
                magnitude
            } else {
                magnitude.reverse()
            };
        }
        let scale = self.exponent.min(other.exponent);
        scaled(self, scale).cmp(&scaled(other, scale))
    }
}

/// `amount` as an integer count of 10^scale units (scale <= its exponent, difference <= 19).
pub fn scaled(amount: Amount, scale: i8) -> i128 {
    amount.mantissa as i128 * POW10[(amount.exponent as i32 - scale as i32) as usize]
}

impl PartialEq for Amount {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_value(*other) == Ordering::Equal
    }
}

impl Eq for Amount {}

impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Amount {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_value(*other)
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
    fn equal_values_in_different_forms() {
        assert_eq!(a(6180030, -2), a(618003, -1));
        assert!(!a(6180030, -2).same_repr(a(618003, -1)));
        assert_eq!(a(0, -8), Amount::ZERO);
        assert!(a(1, 0) > a(9, -1));
        assert!(a(-1, 0) < a(-9, -1));
        assert!(a(1, 100) > a(i64::MAX, -100));
        assert!(a(-1, 100) < a(i64::MIN, 0));
        assert!(a(i64::MAX, -128) > Amount::ZERO);
        assert!(a(1, -128) < a(1, 127));
    }

    /// Reference: compare via exact big integers built from strings of digits (no overflow possible).
    fn reference(x: Amount, y: Amount) -> Ordering {
        let shift = |v: Amount, to: i32| -> (bool, String) {
            let digits = v.mantissa.unsigned_abs().to_string();
            let zeros = (v.exponent as i32 - to) as usize;
            (v.mantissa < 0, format!("{digits}{}", "0".repeat(zeros)))
        };
        let low = (x.exponent.min(y.exponent)) as i32;
        let (nx, dx) = shift(x, low);
        let (ny, dy) = shift(y, low);
        let mag = |d: &str| -> (usize, String) {
            let t = d.trim_start_matches('0');
            (t.len(), t.to_string())
        };
        let (mx, my) = (mag(&dx), mag(&dy));
        let sx = if mx.0 == 0 {
            0
        } else if nx {
            -1
        } else {
            1
        };
        let sy = if my.0 == 0 {
            0
        } else if ny {
            -1
        } else {
            1
        };
        if sx != sy || sx == 0 {
            return sx.cmp(&sy);
        }
        let m = mx.cmp(&my);
        if sx > 0 {
            m
        } else {
            m.reverse()
        }
    }

    proptest! {
        #[test]
        fn order_is_exact(m1 in any::<i64>(), e1 in -30i8..30, m2 in any::<i64>(), e2 in -30i8..30) {
            let (x, y) = (a(m1, e1), a(m2, e2));
            prop_assert_eq!(x.cmp_value(y), reference(x, y));
            prop_assert_eq!(y.cmp_value(x), reference(x, y).reverse());
        }

        #[test]
        fn rescaling_keeps_the_value(m in -1_000_000_000i64..1_000_000_000, e in -20i8..20, k in 0u32..9) {
            let x = a(m, e);
            let y = a(m * 10i64.pow(k), e - k as i8);
            prop_assert_eq!(x, y);
        }
    }
}
