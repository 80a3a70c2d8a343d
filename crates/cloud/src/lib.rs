//! `waymark-cloud`: the Waymark service. Passkey accounts (webauthn-rs),
//! the native-app sign-in, sessions, the device registry, pairing,
//! location ingest, live updates and revocation. One module per flow.

pub mod account_api;
pub mod app;
pub mod binding;
pub mod config;
pub mod error;
pub mod factory;
pub mod ids;
pub mod live;
pub mod local_ca;
pub mod locations;
pub mod open_counts;
pub mod openapi;
pub mod pages;
pub mod pairing;
pub mod revocation;
pub mod secure_heads;
pub mod server;
pub mod signin;
pub mod storage;
pub mod streams;
pub mod watches;
