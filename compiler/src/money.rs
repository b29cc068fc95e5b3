//! Exact amounts of US dollars for the cost bound.
//!
//! Source amounts are whole micro-dollars (`$0.000001`) and prices are
//! micro-dollars per million tokens, so one token costs a whole number of
//! pico-dollars (10⁻¹² USD): [`Usd`] counts those in a `u128`, and sums,
//! products and comparisons are exact. Figures are shown rounded *up* to the
//! micro-dollar, so that a printed bound is still a bound.

use std::fmt;

/// An exact amount in pico-dollars (10⁻¹² USD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(pub u128);

const PICO_PER_MICRO: u128 = 1_000_000;

impl Usd {
    pub const ZERO: Usd = Usd(0);

    /// An amount of whole micro-dollars, as `$…` literals are kept.
    pub fn from_micros(micros: u64) -> Usd {
        Usd(u128::from(micros) * PICO_PER_MICRO)
    }

    /// What `tokens` cost at `per_m` dollars per million tokens. The IR keeps
    /// prices as `f64` dollars lowered from whole micro-dollars, which
    /// round-trip exactly below 2⁵³ micro-dollars (about $9 billion per
    /// million tokens); a larger or negative price counts as the largest or 0.
    pub fn of_tokens(tokens: u64, per_m: f64) -> Usd {
        Usd(u128::from(tokens).saturating_mul(price_micros(per_m)))
    }

    #[must_use]
    pub fn plus(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }

    #[must_use]
    pub fn times(self, n: u64) -> Usd {
        Usd(self.0.saturating_mul(u128::from(n)))
    }

    /// The amount in dollars as a float (for the IR and JSON; rounding is
    /// below a pico-dollar for amounts under about $9,000).
    #[allow(clippy::cast_precision_loss)]
    pub fn to_f64(self) -> f64 {
        let micros = self.0 / PICO_PER_MICRO;
        let rest = self.0 % PICO_PER_MICRO;
        micros as f64 / 1e6 + rest as f64 / 1e12
    }

    /// Whole micro-dollars, rounded up.
    pub fn micros_ceil(self) -> u128 {
        self.0.div_ceil(PICO_PER_MICRO)
    }

    /// How many percent of `budget` this is, rounded up (`None` for a zero
    /// budget).
    pub fn percent_of(self, budget: Usd) -> Option<u128> {
        (budget.0 > 0).then(|| self.0.saturating_mul(100).div_ceil(budget.0))
    }
}

/// Micro-dollars of a price given in dollars, as the IR keeps it.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn price_micros(per_m: f64) -> u128 {
    if per_m.is_nan() || per_m <= 0.0 {
        return 0;
    }
    // `as` saturates at the largest value for an out-of-range float.
    (per_m * 1e6).round() as u128
}

impl fmt::Display for Usd {
    /// `$0`, `$0.50`, `$0.063748`, `$9223372036854.775807`: rounded up to
    /// the micro-dollar, at least two decimals when not zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.micros_ceil();
        if micros == 0 {
            return f.write_str("$0");
        }
        f.write_str(&dollars(micros))
    }
}

/// `$D.CC[CCCC]` of whole micro-dollars, trailing zeros past the cents cut.
pub fn dollars(micros: u128) -> String {
    let whole = micros / 1_000_000;
    let mut frac = format!("{:06}", micros % 1_000_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("${whole}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_amounts_stay_exact() {
        let max = Usd::from_micros(9_223_372_036_854_775_807);
        assert_eq!(max.to_string(), "$9223372036854.775807");
        assert_eq!(max.plus(Usd::from_micros(1)).to_string(), "$9223372036854.775808");
    }

    #[test]
    fn token_prices_are_exact_and_shown_rounded_up() {
        // 1,000 tokens at $2.50/M is $0.0025; one token at $0.15/M is
        // $0.00000015, shown as the next micro-dollar.
        assert_eq!(Usd::of_tokens(1000, 2.5), Usd::from_micros(2500));
        assert_eq!(Usd::of_tokens(1, 0.15).to_string(), "$0.000001");
        assert_eq!(Usd::ZERO.to_string(), "$0");
        assert_eq!(Usd::from_micros(500_000).to_string(), "$0.50");
        assert_eq!(Usd::from_micros(300_000).to_string(), "$0.30");
        // 0.1 + 0.2 is 0.3 exactly here.
        assert_eq!(Usd::from_micros(100_000).plus(Usd::from_micros(200_000)), Usd::from_micros(300_000));
    }

    #[test]
    fn percent() {
        assert_eq!(Usd::from_micros(1).percent_of(Usd::from_micros(3)), Some(34));
        assert_eq!(Usd::from_micros(3).percent_of(Usd::ZERO), None);
    }
}
