//! Signing up and signing in: the RFC 8252 `/authorize` page, the passkey
//! ceremonies the page runs (new account, discoverable sign-in, and the
//! confirm-then-add flow for another passkey), and the `/token` and
//! `/revoke` endpoints that turn a one-time code into a session.

use axum::extract::{FromRequest, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use waymark_protocol::account::clean_name;
use waymark_protocol::signin::{
    CodeVerifier, DESKTOP_CLIENT_ID, LoopbackRedirect, TokenResponse, is_s256_challenge,
    random_token,
};
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid,
};
use webauthn_rs_proto::{
    AuthenticatorSelectionCriteria, ResidentKeyRequirement, UserVerificationPolicy,
};

use crate::app::AppState;
use crate::error::ApiError;
use crate::ids::{is_id, new_id, now_ms, token_hash};
use crate::pages;
use crate::server::Peer;
use crate::storage::{AuthRequest, Caller, CodeGrant, Refresh};

/// A sign-in page (and its ceremonies) lives 10 minutes.
const REQUEST_TTL_MS: i64 = 10 * 60 * 1000;
/// Ceremony state expires after 5 minutes and is usable once.
const CEREMONY_TTL_MS: i64 = 5 * 60 * 1000;
/// Authorization codes live 60 seconds and are single-use.
const CODE_TTL_MS: i64 = 60 * 1000;
/// Access tokens live 10 minutes; the app refreshes them silently.
pub const ACCESS_TTL_MS: i64 = 10 * 60 * 1000;

/// Passkey ceremonies one source address may start in [`LIMIT_WINDOW_MS`].
pub const MAX_CEREMONIES_PER_SOURCE: i64 = 120;
/// Sign-in pages (`GET /authorize`, each a stored request) one source address may open in [`LIMIT_WINDOW_MS`].
pub const MAX_AUTHORIZE_PER_SOURCE: i64 = 120;
/// Refused `/token` requests one source address may make in [`LIMIT_WINDOW_MS`].
pub const MAX_BAD_TOKEN_REQUESTS_PER_SOURCE: i64 = 60;
pub const LIMIT_WINDOW_MS: i64 = 10 * 60 * 1000;

/// Counts one attempt from `peer` against `what`, refusing once the budget is spent.
async fn spend(app: &AppState, what: &str, peer: &Peer, max: i64) -> Result<(), ApiError> {
    let key = format!("{what}:source:{}", peer.0.ip());
    if app.store.spend_attempt(&key, LIMIT_WINDOW_MS, max).await? {
        Ok(())
    } else {
        Err(ApiError::RateLimited)
    }
}

/// JSON body extractor whose rejections use the API's error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

/// Form body extractor whose rejections use the API's error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(ApiError))]
pub struct Form<T>(pub T);

// ---- /authorize -----------------------------------------------------------

#[derive(Deserialize)]
pub struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Validates an RFC 8252 request and shows the passkey page. Nothing ever
/// redirects to an address that failed validation.
pub async fn authorize(
    State(app): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    query: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let result = async {
        let Query(p) = query?;
        let request = validate_authorize(p)?;
        // Each page stores a row before anyone has proved anything: limited per source.
        spend(&app, "authorize", &peer, MAX_AUTHORIZE_PER_SOURCE).await?;
        app.store.insert_auth_request(&request).await?;
        Ok::<_, ApiError>(request.id)
    }
    .await;
    match result {
        Ok(request_id) => pages::ceremony_page(pages::PageMode::SignIn, &request_id),
        Err(e) if wants_html(&headers) => pages::error_page(&e),
        Err(e) => e.into_response(),
    }
}

fn validate_authorize(p: AuthorizeParams) -> Result<AuthRequest, ApiError> {
    let missing = |name: &str| {
        ApiError::InvalidRequest(format!(
            "The sign-in link is missing `{name}`. Start again from the app."
        ))
    };
    let redirect_uri = p.redirect_uri.ok_or_else(|| missing("redirect_uri"))?;
    LoopbackRedirect::parse(&redirect_uri).map_err(|_| ApiError::InvalidRedirectUri)?;
    if p.client_id.as_deref() != Some(DESKTOP_CLIENT_ID) {
        return Err(ApiError::InvalidClient);
    }
    if p.response_type.as_deref() != Some("code") {
        return Err(ApiError::InvalidRequest(
            "response_type must be `code`.".into(),
        ));
    }
    let state = p.state.ok_or_else(|| missing("state"))?;
    if state.is_empty() || state.len() > 256 || !state.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::InvalidRequest(
            "`state` must be 1–256 printable ASCII characters.".into(),
        ));
    }
    match p.code_challenge_method.as_deref() {
        Some("S256") => {}
        Some("plain") => {
            return Err(ApiError::InvalidRequest(
                "PKCE method `plain` is not allowed; use S256.".into(),
            ));
        }
        _ => {
            return Err(ApiError::InvalidRequest(
                "code_challenge_method must be S256.".into(),
            ));
        }
    }
    let code_challenge = p.code_challenge.ok_or_else(|| missing("code_challenge"))?;
    if !is_s256_challenge(&code_challenge) {
        return Err(ApiError::InvalidRequest(
            "code_challenge is not an S256 challenge.".into(),
        ));
    }
    Ok(AuthRequest {
        id: new_id(),
        purpose: "sign_in".into(),
        client_id: DESKTOP_CLIENT_ID.into(),
        redirect_uri,
        state,
        code_challenge,
        account_id: None,
        session_id: None,
        verified_at: None,
        expires_at: now_ms() + REQUEST_TTL_MS,
        confirm_hash: None,
    })
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

#[derive(Deserialize)]
pub struct EnrollParams {
    request: String,
}

/// The page a one-time enrollment link opens (see `account_api::start_enrollment`).
pub async fn enroll_page(State(app): State<AppState>, Query(p): Query<EnrollParams>) -> Response {
    match live_request(&app, &p.request, "enroll").await {
        Ok(_) => pages::ceremony_page(pages::PageMode::Enroll, &p.request),
        Err(e) => pages::error_page(&e),
    }
}

// ---- ceremonies -----------------------------------------------------------

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    request_id: String,
    #[serde(default)]
    display_name: Option<String>,
    /// Enrolment only: the secret the confirmation gave this browser.
    #[serde(default)]
    confirmation: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFinishBody {
    ceremony_id: String,
    credential: RegisterPublicKeyCredential,
    #[serde(default)]
    confirmation: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInFinishBody {
    ceremony_id: String,
    credential: PublicKeyCredential,
}

#[derive(Serialize)]
pub struct Started<T> {
    ceremony_id: String,
    options: T,
}

/// Where the page goes next: back to the app (with a code), or nowhere.
#[derive(Serialize)]
pub struct Finished {
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect: Option<String>,
    /// After an enrolment confirmation: the one-time secret only this
    /// browser holds, which adding the passkey must present (never in a URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmation: Option<String>,
    message: String,
}

async fn live_request(app: &AppState, id: &str, purpose: &str) -> Result<AuthRequest, ApiError> {
    if !is_id(id) {
        return Err(ApiError::CeremonyExpired);
    }
    match app.store.auth_request(id).await? {
        Some(r) if r.purpose == purpose || purpose.is_empty() => Ok(r),
        _ => Err(ApiError::CeremonyExpired),
    }
}

/// New account (from the sign-in page) or another passkey (from an
/// enrollment link, after the parent confirmed with an existing passkey).
pub async fn register_start(
    State(app): State<AppState>,
    _: SameOrigin,
    peer: Peer,
    Json(body): Json<StartBody>,
) -> Result<axum::Json<Started<CreationChallengeResponse>>, ApiError> {
    spend(&app, "ceremony", &peer, MAX_CEREMONIES_PER_SOURCE).await?;
    let request = live_request(&app, &body.request_id, "").await?;
    let (user_id, user_name, exclude, display_name) = if request.purpose == "enroll" {
        if !confirmed_here(&request, body.confirmation.as_deref()) {
            return Err(ApiError::InvalidRequest(
                "Confirm with one of your passkeys first, in this browser window.".into(),
            ));
        }
        let account_id = request
            .account_id
            .as_deref()
            .ok_or(ApiError::CeremonyExpired)?;
        let account = app
            .store
            .account(account_id)
            .await?
            .ok_or(ApiError::CeremonyExpired)?;
        let exclude = app
            .store
            .passkeys_of(account_id)
            .await?
            .iter()
            .filter_map(|p| serde_json::from_str::<Passkey>(&p.passkey).ok())
            .map(|p| p.cred_id().clone())
            .collect::<Vec<_>>();
        let user_id = Uuid::parse_str(&account.webauthn_user_id).map_err(anyhow::Error::from)?;
        (user_id, account.display_name, Some(exclude), None)
    } else {
        let name = body
            .display_name
            .as_deref()
            .and_then(clean_name)
            .ok_or_else(|| {
                ApiError::InvalidRequest("Enter a name for the account (1–64 characters).".into())
            })?;
        (Uuid::new_v4(), name.clone(), None, Some(name))
    };
    let (mut options, state) = app
        .webauthn
        .start_passkey_registration(user_id, &user_name, &user_name, exclude)
        .map_err(|e| anyhow::anyhow!("starting registration: {e:?}"))?;
    // Waymark signs in without a user name, so the credential must be discoverable.
    options.public_key.authenticator_selection = Some(AuthenticatorSelectionCriteria {
        authenticator_attachment: None,
        resident_key: Some(ResidentKeyRequirement::Required),
        require_resident_key: true,
        user_verification: UserVerificationPolicy::Required,
    });
    let state = serde_json::to_string(&state).map_err(anyhow::Error::from)?;
    let ceremony_id = app
        .store
        .insert_ceremony(
            "register",
            &request.id,
            &state,
            display_name.as_deref(),
            Some(&user_id.to_string()),
            CEREMONY_TTL_MS,
        )
        .await?;
    Ok(axum::Json(Started {
        ceremony_id,
        options,
    }))
}

pub async fn register_finish(
    State(app): State<AppState>,
    _: SameOrigin,
    Json(body): Json<RegisterFinishBody>,
) -> Result<axum::Json<Finished>, ApiError> {
    let ceremony = take_ceremony(&app, &body.ceremony_id, "register").await?;
    let request = live_request(&app, &ceremony.request_id, "").await?;
    if request.purpose == "enroll" && !confirmed_here(&request, body.confirmation.as_deref()) {
        return Err(ApiError::CeremonyExpired);
    }
    let state: PasskeyRegistration =
        serde_json::from_str(&ceremony.state).map_err(anyhow::Error::from)?;
    let passkey = app
        .webauthn
        .finish_passkey_registration(&body.credential, &state)
        .map_err(|e| {
            tracing::info!(reason = ?e, "passkey registration refused");
            ApiError::PasskeyRejected
        })?;
    let credential_id = credential_key(passkey.cred_id().as_ref());
    let passkey_json = serde_json::to_string(&passkey).map_err(anyhow::Error::from)?;
    if request.purpose == "enroll" {
        let account_id = request
            .account_id
            .as_deref()
            .ok_or(ApiError::CeremonyExpired)?;
        app.store
            .add_passkey(
                account_id,
                &credential_id,
                &passkey_json,
                request.session_id.as_deref(),
            )
            .await
            .map_err(duplicate_credential)?;
        app.store.delete_auth_request(&request.id).await?;
        return Ok(axum::Json(Finished {
            redirect: None,
            confirmation: None,
            message: "Passkey added. You can close this window and return to Waymark.".into(),
        }));
    }
    let user_id = ceremony
        .user_id
        .as_deref()
        .ok_or(ApiError::CeremonyExpired)?;
    let display_name = ceremony
        .display_name
        .as_deref()
        .ok_or(ApiError::CeremonyExpired)?;
    let (code, finished) = code_for(&request)?;
    let grant = CodeGrant {
        code: &code,
        request: &request,
        ttl_ms: CODE_TTL_MS,
    };
    app.store
        .create_account(user_id, display_name, &credential_id, &passkey_json, &grant)
        .await
        .map_err(duplicate_credential)?
        .ok_or(ApiError::CeremonyExpired)?;
    tracing::info!("account created");
    Ok(axum::Json(finished))
}

/// Discoverable sign-in (no user name) on the sign-in page; on an
/// enrollment page, a confirmation with one of the account's own passkeys.
pub async fn sign_in_start(
    State(app): State<AppState>,
    _: SameOrigin,
    peer: Peer,
    Json(body): Json<StartBody>,
) -> Result<axum::Json<Started<webauthn_rs::prelude::RequestChallengeResponse>>, ApiError> {
    spend(&app, "ceremony", &peer, MAX_CEREMONIES_PER_SOURCE).await?;
    let request = live_request(&app, &body.request_id, "").await?;
    // Both are discoverable: the confirmation on an enrolment page names no
    // credential, so the page reveals nothing about the account to whoever
    // opened the link; the account is checked when the assertion comes back.
    let kind = if request.purpose == "enroll" {
        "verify"
    } else {
        "sign_in"
    };
    let (mut options, state) = app
        .webauthn
        .start_discoverable_authentication()
        .map_err(|e| anyhow::anyhow!("starting sign-in: {e:?}"))?;
    // The page asks on a button press (modal), not through autofill.
    options.mediation = None;
    let state = serde_json::to_string(&state);
    let state = state.map_err(anyhow::Error::from)?;
    let ceremony_id = app
        .store
        .insert_ceremony(kind, &request.id, &state, None, None, CEREMONY_TTL_MS)
        .await?;
    Ok(axum::Json(Started {
        ceremony_id,
        options,
    }))
}

pub async fn sign_in_finish(
    State(app): State<AppState>,
    _: SameOrigin,
    Json(body): Json<SignInFinishBody>,
) -> Result<axum::Json<Finished>, ApiError> {
    if !is_id(&body.ceremony_id) {
        return Err(ApiError::CeremonyExpired);
    }
    // The ceremony kind follows from what was started; try both.
    let ceremony = match app
        .store
        .take_ceremony(&body.ceremony_id, "sign_in")
        .await?
    {
        Some(c) => c,
        None => take_ceremony(&app, &body.ceremony_id, "verify").await?,
    };
    let request = live_request(&app, &ceremony.request_id, "").await?;
    let credential = &body.credential;

    let state: DiscoverableAuthentication =
        serde_json::from_str(&ceremony.state).map_err(anyhow::Error::from)?;
    let (user_id, cred_id) = app
        .webauthn
        .identify_discoverable_authentication(credential)
        .map_err(|_| ApiError::UnknownPasskey)?;
    let account = app
        .store
        .account_by_user_id(&user_id.to_string())
        .await?
        .ok_or(ApiError::UnknownPasskey)?;
    if ceremony.kind == "verify" && request.account_id.as_deref() != Some(account.id.as_str()) {
        // A passkey of another account cannot confirm this one's enrolment.
        return Err(ApiError::UnknownPasskey);
    }
    let stored = app
        .store
        .passkey_by_credential(&account.id, &credential_key(cred_id))
        .await?
        .ok_or(ApiError::UnknownPasskey)?;
    let passkey: Passkey = serde_json::from_str(&stored.passkey).map_err(anyhow::Error::from)?;
    let result = app
        .webauthn
        .finish_discoverable_authentication_v2(credential, state, &passkey)
        .map_err(|e| {
            tracing::info!(reason = ?e, "passkey sign-in refused");
            ApiError::PasskeyRejected
        })?;
    save_counter(&app, &stored, &result).await?;
    if ceremony.kind == "verify" {
        let secret = random_token(32);
        app.store
            .mark_request_verified(&request.id, &token_hash(&secret))
            .await?;
        return Ok(axum::Json(Finished {
            redirect: None,
            confirmation: Some(secret),
            message: "Confirmed. Now create the new passkey.".into(),
        }));
    }
    let (code, finished) = code_for(&request)?;
    let grant = CodeGrant {
        code: &code,
        request: &request,
        ttl_ms: CODE_TTL_MS,
    };
    if !app.store.grant_code(&grant, &account.id).await? {
        return Err(ApiError::CeremonyExpired);
    }
    Ok(axum::Json(finished))
}

async fn take_ceremony(
    app: &AppState,
    id: &str,
    kind: &str,
) -> Result<crate::storage::Ceremony, ApiError> {
    if !is_id(id) {
        return Err(ApiError::CeremonyExpired);
    }
    app.store
        .take_ceremony(id, kind)
        .await?
        .ok_or(ApiError::CeremonyExpired)
}

/// Confirmed recently, by the browser that presents `secret`.
fn confirmed_here(request: &AuthRequest, secret: Option<&str>) -> bool {
    let recent = request
        .verified_at
        .is_some_and(|t| now_ms() - t < CEREMONY_TTL_MS);
    // Hashes are compared, so timing says nothing about the secret itself.
    let holder = match (&request.confirm_hash, secret) {
        (Some(stored), Some(secret)) => *stored == token_hash(secret),
        _ => false,
    };
    recent && holder
}

async fn save_counter(
    app: &AppState,
    stored: &crate::storage::StoredPasskey,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<(), ApiError> {
    let mut passkey: Passkey =
        serde_json::from_str(&stored.passkey).map_err(anyhow::Error::from)?;
    passkey.update_credential(result);
    let json = serde_json::to_string(&passkey).map_err(anyhow::Error::from)?;
    app.store.passkey_used(&stored.id, &json).await?;
    Ok(())
}

/// The same credential cannot belong to two accounts (webauthn-rs asks us to check).
fn duplicate_credential(e: sqlx::Error) -> ApiError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            ApiError::InvalidRequest("This passkey is already registered.".into())
        }
        _ => e.into(),
    }
}

pub fn credential_key(raw: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The one-time code a successful sign-in ends with, and the page's answer
/// carrying it to the loopback address. Built before anything is written,
/// from the same parsed URL the request was checked with, so a redirect
/// that cannot be built fails the ceremony without a trace.
fn code_for(request: &AuthRequest) -> Result<(String, Finished), ApiError> {
    let redirect =
        LoopbackRedirect::parse(&request.redirect_uri).map_err(|_| ApiError::InvalidRedirectUri)?;
    let code = random_token(32);
    let finished = Finished {
        redirect: Some(redirect.with_code(&code, &request.state)),
        confirmation: None,
        message: "Signed in. Returning to the Waymark app…".into(),
    };
    Ok((code, finished))
}

// ---- /token and /revoke ---------------------------------------------------

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

/// `POST /token`. Refused requests are counted per source address, so codes
/// and refresh tokens cannot be tried at speed.
pub async fn token(
    State(app): State<AppState>,
    peer: Peer,
    Form(form): Form<TokenForm>,
) -> Result<Response, ApiError> {
    // Every request spends from the budget first (one atomic count, so
    // concurrent requests cannot all slip under it); only refused ones keep it spent.
    let key = format!("token:source:{}", peer.0.ip());
    if !app
        .store
        .spend_attempt(&key, LIMIT_WINDOW_MS, MAX_BAD_TOKEN_REQUESTS_PER_SOURCE)
        .await?
    {
        return Err(ApiError::RateLimited);
    }
    let tokens = match form.grant_type.as_deref() {
        Some("authorization_code") => exchange_code(&app, form).await,
        Some("refresh_token") => refresh(&app, form).await,
        _ => Err(ApiError::UnsupportedGrantType),
    };
    match tokens {
        Ok(tokens) => {
            app.store.refund_attempt(&key).await?;
            Ok((StatusCode::OK, axum::Json(tokens)).into_response())
        }
        Err(e @ (ApiError::Internal(_) | ApiError::Unavailable)) => {
            app.store.refund_attempt(&key).await?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

async fn exchange_code(app: &AppState, form: TokenForm) -> Result<TokenResponse, ApiError> {
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
    if stored.expires_at <= now_ms() {
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

async fn refresh(app: &AppState, form: TokenForm) -> Result<TokenResponse, ApiError> {
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

#[derive(Deserialize)]
pub struct RevokeForm {
    token: Option<String>,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

/// RFC 7009: always 200 for a well-formed request, known token or not.
pub async fn revoke(
    State(app): State<AppState>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, ApiError> {
    let token = form
        .token
        .filter(|t| !t.is_empty() && t.len() <= 512)
        .ok_or_else(|| ApiError::InvalidRequest("`token` is required.".into()))?;
    app.store.revoke_token(&token).await?;
    Ok(axum::Json(json!({ "revoked": true })).into_response())
}

// ---- bearer authentication --------------------------------------------------

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
