//! Config (stub until the loader lands).
mod types;
pub use types::*;
