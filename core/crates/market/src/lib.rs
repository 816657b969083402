//! The compiled market core of CryptoSpreadEdge: exact integer amounts, L2 books with the exchanges'
//! sequence rules, last-value market views, the simulated venue's view of the book, wake evaluation and a
//! snapshot codec. No Python here: `crates/py` binds it; `domain/` (Python) stays the reference.

pub mod amount;
pub mod book;
pub mod capture;
pub mod codec;
pub mod core;
pub mod rows;
pub mod venue;
pub mod view;
pub mod wake;

pub use amount::Amount;
