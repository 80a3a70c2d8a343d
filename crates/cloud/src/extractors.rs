//! What handlers take from a request, each refusing with the API's error
//! shape: JSON and form bodies, the same-origin check of the sign-in page's
//! ceremony calls, and the [`Caller`] a bearer token speaks for.

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;
pub use crate::storage::sessions::Caller;

/// JSON body extractor whose rejections use the API's error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

/// Form body extractor whose rejections use the API's error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(ApiError))]
pub struct Form<T>(pub T);

/// Ceremony endpoints answer only the sign-in page itself: a page on any
/// other origin is refused here, before webauthn-rs also refuses its
/// client data.
pub struct SameOrigin;

impl FromRequestParts<AppState> for SameOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let origin = parts
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        if origin == Some(app.origin_str().as_str()) {
            Ok(SameOrigin)
        } else {
            Err(ApiError::WrongOrigin)
        }
    }
}

/// Bearer authentication: the caller a live access token speaks for.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| t.len() <= 128)
            .ok_or(ApiError::Unauthenticated)?;
        app.store
            .caller(token)
            .await?
            .ok_or(ApiError::Unauthenticated)
    }
}
