//! The service layer: flows with more than one step, between the thin
//! HTTP handlers and the store.

pub mod ceremonies;
pub mod tokens;
