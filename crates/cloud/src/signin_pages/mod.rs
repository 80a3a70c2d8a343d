//! What a browser calls: the home page, the passkey pages (sign-in and
//! enrolment) with their script, style and ceremony calls, the OAuth-style
//! `/token` and `/revoke` the app calls around them, and the health probe. No bearer token is taken here.

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post};

use crate::state::AppState;

pub mod pages;
pub mod signin;

/// This group's routes: the router is built from this list, so the attack
/// suite enumerates exactly what is served.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    use Method as M;
    vec![
        (M::GET, "/", get(pages::home)),
        (M::GET, "/healthz", get(pages::health)),
        (M::GET, "/static/waymark.js", get(pages::script)),
        (M::GET, "/static/waymark.css", get(pages::style)),
        (M::GET, "/authorize", get(signin::authorize)),
        (M::GET, "/enroll", get(signin::enroll_page)),
        (
            M::POST,
            "/ceremony/register/start",
            post(signin::register_start),
        ),
        (
            M::POST,
            "/ceremony/register/finish",
            post(signin::register_finish),
        ),
        (
            M::POST,
            "/ceremony/sign-in/start",
            post(signin::sign_in_start),
        ),
        (
            M::POST,
            "/ceremony/sign-in/finish",
            post(signin::sign_in_finish),
        ),
        (M::POST, "/token", post(signin::token)),
        (M::POST, "/revoke", post(signin::revoke)),
    ]
}

pub fn router() -> Router<AppState> {
    routes()
        .into_iter()
        .fold(Router::new(), |r, (_, path, handler)| {
            r.route(path, handler)
        })
}
