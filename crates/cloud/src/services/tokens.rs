//! Turning a one-time sign-in code into a session, and rotating a
//! session's refresh token (RFC 6749 with PKCE, RFC 7009 revocation).

use serde::Deserialize;
use waymark_protocol::account::clean_name;
use waymark_protocol::signin::{CodeVerifier, DESKTOP_CLIENT_ID, TokenResponse, random_token};

use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::sessions::Refresh;

/// Access tokens live 10 minutes; the app refreshes them silently.
pub const ACCESS_TTL_MS: i64 = 10 * 60 * 1000;

#[derive(Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    /// The name this computer shows in the account's list (host name by default).
    session_name: Option<String>,
}

impl TokenForm {
    pub fn grant_type(&self) -> Option<&str> {
        self.grant_type.as_deref()
    }
}

pub async fn exchange_code(app: &AppState, form: TokenForm) -> Result<TokenResponse, ApiError> {
    if form.client_id.as_deref() != Some(DESKTOP_CLIENT_ID) {
        return Err(ApiError::InvalidClient);
    }
    let code = form
        .code
        .ok_or(ApiError::InvalidGrant("The sign-in code is missing."))?;
    let verifier = form
        .code_verifier
        .as_deref()
        .and_then(CodeVerifier::parse)
        .ok_or(ApiError::InvalidGrant(
            "The PKCE code_verifier is missing or malformed.",
        ))?;
    let stored = app
        .store
        .auth_code(&code)
        .await?
        .ok_or(ApiError::InvalidGrant(
            "This sign-in code is not valid. Sign in again.",
        ))?;
    if let Some(session_id) = stored.session_id {
        // A code used twice: whoever holds it is not to be trusted.
        app.store.end_session_of_replayed_code(&session_id).await?;
        tracing::warn!("authorization code replayed; its session was ended");
        return Err(ApiError::InvalidGrant(
            "This sign-in code was already used. Sign in again.",
        ));
    }
    if stored.expires_at <= app.store.now() {
        return Err(ApiError::InvalidGrant(
            "This sign-in code has expired. Sign in again.",
        ));
    }
    if stored.client_id != DESKTOP_CLIENT_ID
        || form.redirect_uri.as_deref() != Some(stored.redirect_uri.as_str())
    {
        return Err(ApiError::InvalidGrant(
            "redirect_uri does not match the sign-in request.",
        ));
    }
    if verifier.s256_challenge() != stored.code_challenge {
        return Err(ApiError::InvalidGrant(
            "The PKCE code_verifier does not match.",
        ));
    }
    let session_name = form
        .session_name
        .as_deref()
        .and_then(clean_name)
        .unwrap_or_else(|| "Unnamed computer".into());
    let (access, refresh) = (access_token(), refresh_token());
    app.store
        .exchange_code(&code, &session_name, &access, &refresh, ACCESS_TTL_MS)
        .await?
        .ok_or(ApiError::InvalidGrant(
            "This sign-in code is not valid. Sign in again.",
        ))?;
    tracing::info!("session opened");
    Ok(token_response(access, refresh))
}

pub async fn refresh(app: &AppState, form: TokenForm) -> Result<TokenResponse, ApiError> {
    let presented = form
        .refresh_token
        .ok_or(ApiError::InvalidGrant("The refresh_token is missing."))?;
    let (access, refresh) = (access_token(), refresh_token());
    match app
        .store
        .refresh(&presented, &access, &refresh, ACCESS_TTL_MS)
        .await?
    {
        Refresh::Rotated { .. } => Ok(token_response(access, refresh)),
        Refresh::ReuseDetected => {
            tracing::warn!("a spent sign-in credential was presented again; its session was ended");
            Err(ApiError::InvalidGrant(
                "This sign-in was ended because an old token was used again. Sign in again.",
            ))
        }
        Refresh::Invalid => Err(ApiError::InvalidGrant(
            "This sign-in has ended. Sign in again.",
        )),
    }
}

fn access_token() -> String {
    format!("wm_at_{}", random_token(32))
}

fn refresh_token() -> String {
    format!("wm_rt_{}", random_token(32))
}

fn token_response(access_token: String, refresh_token: String) -> TokenResponse {
    TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: (ACCESS_TTL_MS / 1000) as u64,
        refresh_token,
    }
}
