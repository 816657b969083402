//! Last-value market views per (venue, instrument), the contract of `domain/market_view.py`
//! (`ReferenceMarketView`): last quote, last priced quote (bid > 0, ask > 0), last valid quote (bid > 0,
//! ask >= bid), the valid quote as it was before the last quote, last trade. Each value remembers the input
//! row it came from, so Python materialises the very event the reference view would hold.

use crate::amount::Amount;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quote {
    pub bid_price: Amount,
    pub bid_size: Amount,
    pub ask_price: Amount,
    pub ask_size: Amount,
    /// The exchange's book update id the ticker shows (Binance bookTicker `u`), if it carries one.
    pub venue_update_id: Option<i64>,
    pub event_time_ns: i64,
    /// The input row it was read from (global row index of the session).
    pub row: u64,
}

impl Quote {
    /// Both prices positive (risk's mid and top level).
    pub fn is_priced(&self) -> bool {
        self.bid_price.is_positive() && self.ask_price.is_positive()
    }

    /// A quote a mark can be taken from: positive bid, ask not below it.
    pub fn is_valid(&self) -> bool {
        self.bid_price.is_positive() && self.ask_price >= self.bid_price
    }

    /// A quote a venue can match against: positive prices, neither crossed nor locked.
    pub fn is_matchable(&self) -> bool {
        self.is_priced() && self.bid_price < self.ask_price
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trade {
    pub price: Amount,
    pub size: Amount,
    /// The aggressor bought (took the ask).
    pub aggressor_buy: bool,
    pub event_time_ns: i64,
    pub row: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MarketView {
    pub quote: Option<Quote>,
    pub priced_quote: Option<Quote>,
    pub valid_quote: Option<Quote>,
    pub prior_valid_quote: Option<Quote>,
    pub trade: Option<Trade>,
}

impl MarketView {
    pub fn on_quote(&mut self, quote: Quote) {
        self.quote = Some(quote);
        self.prior_valid_quote = self.valid_quote;
        if quote.is_priced() {
            self.priced_quote = Some(quote);
        }
        if quote.is_valid() {
            self.valid_quote = Some(quote);
        }
    }

    pub fn on_trade(&mut self, trade: Trade) {
        self.trade = Some(trade);
    }
}
