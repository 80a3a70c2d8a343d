//! `waymark-cloud`: the Waymark service. Passkey accounts (webauthn-rs),
//! the native-app sign-in, sessions, the device registry, pairing,
//! location ingest, live updates and revocation.
//!
//! Routes are grouped by who calls them, each group exporting its router:
//! [`signin_pages`] (the browser), [`parent_api`] (`/api/v1`, the desktop
//! app with a bearer token) and [`device_api`] (`/device/v1`, watches with
//! a device signature). Handlers are thin: ceremonies live in [`services`],
//! SQL in [`storage`] (one module per flow), and every read of a watch's
//! data passes [`binding`].

pub mod app;
pub mod binding;
pub mod config;
pub mod device_api;
pub mod error;
pub mod extractors;
pub mod factory;
pub mod guess_limits;
pub mod ids;
pub mod live_bus;
pub mod local_ca;
pub mod open_counts;
pub mod parent_api;
pub mod route_table;
pub mod secure_heads;
pub mod server;
pub mod services;
pub mod signin_pages;
pub mod state;
pub mod storage;
pub mod streams;
