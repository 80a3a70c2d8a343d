//! The passkey ceremonies, between the sign-in page's handlers and the
//! store: opening a sign-in request (RFC 8252), registering a new account's
//! first passkey, discoverable sign-in, and the confirm-then-add flow for
//! another passkey. Each ends, when it signs someone in, with a one-time
//! code granted in the same transaction as whatever it wrote.

use serde::{Deserialize, Serialize};
use waymark_protocol::account::clean_name;
use waymark_protocol::ids::{CeremonyId, RequestId};
use waymark_protocol::signin::{
    DESKTOP_CLIENT_ID, LoopbackRedirect, is_s256_challenge, random_token,
};
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid,
};
use webauthn_rs_proto::{
    AuthenticatorSelectionCriteria, ResidentKeyRequirement, UserVerificationPolicy,
};

use crate::error::ApiError;
use crate::ids::token_hash;
use crate::server::Peer;
use crate::state::AppState;
use crate::storage::accounts::StoredPasskey;
use crate::storage::sessions::Caller;
use crate::storage::signin::{AuthRequest, Ceremony, CeremonyKind, CodeGrant, Purpose};

/// A sign-in page (and its ceremonies) lives 10 minutes.
const REQUEST_TTL_MS: i64 = 10 * 60 * 1000;
/// Ceremony state expires after 5 minutes and is usable once.
const CEREMONY_TTL_MS: i64 = 5 * 60 * 1000;
/// Authorization codes live 60 seconds and are single-use.
const CODE_TTL_MS: i64 = 60 * 1000;

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

#[derive(Deserialize)]
pub struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Checks an RFC 8252 request and stores it: the id the sign-in page
/// carries. Nothing ever redirects to an address that failed validation.
pub async fn open_sign_in_request(
    app: &AppState,
    peer: &Peer,
    p: AuthorizeParams,
) -> Result<RequestId, ApiError> {
    let request = validate_authorize(p, app.store.now())?;
    // Each page stores a row before anyone has proved anything: limited per source.
    spend(app, "authorize", peer, MAX_AUTHORIZE_PER_SOURCE).await?;
    app.store.insert_auth_request(&request).await?;
    Ok(request.id)
}

/// An enrollment link lives 5 minutes.
const ENROLL_TTL_MS: i64 = 5 * 60 * 1000;

/// A one-time link (and its expiry) to add another passkey to the
/// caller's account. The link alone grants nothing: the page first asks
/// for one of the account's passkeys.
pub async fn open_enrolment(app: &AppState, caller: &Caller) -> Result<(String, i64), ApiError> {
    let expires_at = app.store.now() + ENROLL_TTL_MS;
    let request = AuthRequest {
        id: RequestId::random(),
        purpose: Purpose::Enroll,
        client_id: String::new(),
        redirect_uri: String::new(),
        state: String::new(),
        code_challenge: String::new(),
        account_id: Some(caller.account_id.to_string()),
        session_id: Some(caller.session_id.to_string()),
        verified_at: None,
        expires_at,
        confirm_hash: None,
    };
    app.store.insert_auth_request(&request).await?;
    let mut url = app.origin.join("/enroll").map_err(anyhow::Error::from)?;
    url.query_pairs_mut().append_pair("request", &request.id);
    Ok((url.into(), expires_at))
}

/// The enrolment link's request, if it is still live.
pub async fn enrolment_request(app: &AppState, raw_id: &str) -> Result<AuthRequest, ApiError> {
    live_request(app, raw_id, Some(Purpose::Enroll)).await
}

fn validate_authorize(p: AuthorizeParams, now: i64) -> Result<AuthRequest, ApiError> {
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
        id: RequestId::random(),
        purpose: Purpose::SignIn,
        client_id: DESKTOP_CLIENT_ID.into(),
        redirect_uri,
        state,
        code_challenge,
        account_id: None,
        session_id: None,
        verified_at: None,
        expires_at: now + REQUEST_TTL_MS,
        confirm_hash: None,
    })
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
    ceremony_id: CeremonyId,
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

/// The live request `raw_id` names, for `purpose` (any if `None`).
async fn live_request(
    app: &AppState,
    raw_id: &str,
    purpose: Option<Purpose>,
) -> Result<AuthRequest, ApiError> {
    let id = RequestId::parse(raw_id).ok_or(ApiError::CeremonyExpired)?;
    match app.store.auth_request(&id).await? {
        Some(r) if purpose.is_none_or(|p| p == r.purpose) => Ok(r),
        _ => Err(ApiError::CeremonyExpired),
    }
}

/// New account (from the sign-in page) or another passkey (from an
/// enrollment link, after the parent confirmed with an existing passkey).
pub async fn register_start(
    app: &AppState,
    peer: &Peer,
    body: StartBody,
) -> Result<Started<CreationChallengeResponse>, ApiError> {
    spend(app, "ceremony", peer, MAX_CEREMONIES_PER_SOURCE).await?;
    let request = live_request(app, &body.request_id, None).await?;
    let (user_id, user_name, exclude, display_name) = if request.purpose == Purpose::Enroll {
        if !confirmed_here(&request, body.confirmation.as_deref(), app.store.now()) {
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
            CeremonyKind::Register,
            &request.id,
            &state,
            display_name.as_deref(),
            Some(&user_id.to_string()),
            CEREMONY_TTL_MS,
        )
        .await?;
    Ok(Started {
        ceremony_id,
        options,
    })
}

pub async fn register_finish(
    app: &AppState,
    body: RegisterFinishBody,
) -> Result<Finished, ApiError> {
    let ceremony = take_ceremony(app, &body.ceremony_id, CeremonyKind::Register).await?;
    let request = live_request(app, &ceremony.request_id, None).await?;
    if request.purpose == Purpose::Enroll
        && !confirmed_here(&request, body.confirmation.as_deref(), app.store.now())
    {
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
    if request.purpose == Purpose::Enroll {
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
        return Ok(Finished {
            redirect: None,
            confirmation: None,
            message: "Passkey added. You can close this window and return to Waymark.".into(),
        });
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
    Ok(finished)
}

/// Discoverable sign-in (no user name) on the sign-in page; on an
/// enrollment page, a confirmation with one of the account's own passkeys.
pub async fn sign_in_start(
    app: &AppState,
    peer: &Peer,
    body: StartBody,
) -> Result<Started<webauthn_rs::prelude::RequestChallengeResponse>, ApiError> {
    spend(app, "ceremony", peer, MAX_CEREMONIES_PER_SOURCE).await?;
    let request = live_request(app, &body.request_id, None).await?;
    // Both are discoverable: the confirmation on an enrolment page names no
    // credential, so the page reveals nothing about the account to whoever
    // opened the link; the account is checked when the assertion comes back.
    let kind = if request.purpose == Purpose::Enroll {
        CeremonyKind::Verify
    } else {
        CeremonyKind::SignIn
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
    Ok(Started {
        ceremony_id,
        options,
    })
}

pub async fn sign_in_finish(app: &AppState, body: SignInFinishBody) -> Result<Finished, ApiError> {
    let id = CeremonyId::parse(&body.ceremony_id).ok_or(ApiError::CeremonyExpired)?;
    // The ceremony kind follows from what was started; try both.
    let ceremony = match app.store.take_ceremony(&id, CeremonyKind::SignIn).await? {
        Some(c) => c,
        None => take_ceremony(app, &body.ceremony_id, CeremonyKind::Verify).await?,
    };
    let request = live_request(app, &ceremony.request_id, None).await?;
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
    if ceremony.kind == CeremonyKind::Verify
        && request.account_id.as_deref() != Some(account.id.as_str())
    {
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
    save_counter(app, &stored, &result).await?;
    if ceremony.kind == CeremonyKind::Verify {
        let secret = random_token(32);
        app.store
            .mark_request_verified(&request.id, &token_hash(&secret))
            .await?;
        return Ok(Finished {
            redirect: None,
            confirmation: Some(secret),
            message: "Confirmed. Now create the new passkey.".into(),
        });
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
    Ok(finished)
}

async fn take_ceremony(
    app: &AppState,
    raw_id: &str,
    kind: CeremonyKind,
) -> Result<Ceremony, ApiError> {
    let id = CeremonyId::parse(raw_id).ok_or(ApiError::CeremonyExpired)?;
    app.store
        .take_ceremony(&id, kind)
        .await?
        .ok_or(ApiError::CeremonyExpired)
}

/// Confirmed recently, by the browser that presents `secret`.
fn confirmed_here(request: &AuthRequest, secret: Option<&str>, now: i64) -> bool {
    let recent = request
        .verified_at
        .is_some_and(|t| now - t < CEREMONY_TTL_MS);
    // Hashes are compared, so timing says nothing about the secret itself.
    let holder = match (&request.confirm_hash, secret) {
        (Some(stored), Some(secret)) => *stored == token_hash(secret),
        _ => false,
    };
    recent && holder
}

async fn save_counter(
    app: &AppState,
    stored: &StoredPasskey,
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
