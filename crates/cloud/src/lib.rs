//! `waymark-cloud`: the Waymark service. Passkey accounts (webauthn-rs),
//! the native-app sign-in, sessions, and (later) the device registry,
//! pairing, location ingest and revocation. One module per flow.

pub mod account_api;
pub mod app;
pub mod config;
pub mod error;
pub mod ids;
pub mod local_ca;
pub mod pages;
pub mod server;
pub mod signin;
pub mod storage;
