//! The one error enum every handler returns, and how each variant answers:
//! a 4xx/5xx status with `{"error": code, "message": text}`.

use axum::Json;
use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use waymark_protocol::error::{ErrorBody, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("The request body is too large.")]
    BodyTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("This request must come from the Waymark sign-in page itself.")]
    WrongOrigin,
    #[error(
        "The app asked to return to an address that is not on this computer. Only http://127.0.0.1:PORT or http://[::1]:PORT are allowed."
    )]
    InvalidRedirectUri,
    #[error("The passkey check failed. Try again, or use another passkey.")]
    PasskeyRejected,
    #[error("This sign-in page has expired or was already used. Start again from the app.")]
    CeremonyExpired,
    #[error(
        "This passkey is not registered with Waymark. Create an account, or use another passkey."
    )]
    UnknownPasskey,
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("Only grant_type=authorization_code and grant_type=refresh_token are supported.")]
    UnsupportedGrantType,
    #[error("Unknown client_id.")]
    InvalidClient,
    #[error("You are not signed in, or your sign-in has ended. Sign in again.")]
    Unauthenticated,
    #[error("Not found.")]
    NotFound,
    #[error(
        "Your role in this family does not allow this: only an owner can {0}. Ask one of the family's owners."
    )]
    RoleForbids(&'static str),
    #[error(
        "This invitation code is not valid: it may be mistyped, used, cancelled or expired. Check it, or ask for a new invitation."
    )]
    InvitationInvalid,
    #[error("{0}")]
    FamilyNotEmpty(&'static str),
    #[error(
        "This family has 10 open invitations. Cancel one, or wait until one is used or expires."
    )]
    TooManyInvitations,
    #[error(
        "The person who founded the family always stays in it as an owner. Change another member instead."
    )]
    FounderStays,
    #[error("This address does not accept that method.")]
    MethodNotAllowed,
    #[error("This is the account's only passkey; add another before removing it.")]
    LastPasskey,
    #[error(
        "This watch is not registered, or its signature does not verify. Make a pairing code on the watch first."
    )]
    UnknownDevice,
    #[error("The signature does not verify with this watch's key.")]
    BadSignature,
    #[error("The watch's certificate is not from a manufacturer this cloud trusts.")]
    UntrustedCertificate,
    #[error(
        "This cloud accepts only watches whose key is in a TPM (a hardware key), and this watch's certificate does not say so. Use a watch certified with `waymark-cloud factory sign --require-tpm`."
    )]
    HardwareKeyRequired,
    #[error("This watch was revoked by its owner. Erase its data and stop.")]
    Revoked,
    #[error("This watch is not paired with an account yet.")]
    NotPaired,
    #[error(
        "This sequence number already holds another batch. Renumber after the cloud's last sequence and send again."
    )]
    SequenceReused,
    #[error("This status poll is not newer than the last one. Make a new one.")]
    ReplayedStatus,
    #[error("This batch cannot be right: {0}.")]
    InvalidBatch(&'static str),
    #[error(
        "This batch names a setup this cloud was not given. Post the setup record, then send the batch again."
    )]
    UnknownSetup,
    #[error("A batch holds at most 500 fixes.")]
    BatchTooLarge,
    #[error(
        "That code does not match any watch. Check it and try again, or make a new one on the watch."
    )]
    InvalidCode,
    #[error("This code has expired — make a new one on the watch.")]
    CodeExpired,
    #[error("This code was already used. Make a new one on the watch.")]
    CodeUsed,
    #[error("Another watch is showing a code that starts the same way. Make a new code.")]
    LocatorTaken,
    #[error("This watch is already paired with another account. Its owner must revoke it first.")]
    AlreadyPaired,
    #[error("This watch is already paired with your account.")]
    AlreadyYours,
    #[error("Too many wrong codes. Wait an hour, then try again.")]
    TooManyAttempts,
    #[error("Too many attempts from this address. Wait a few minutes, then try again.")]
    RateLimited,
    #[error(
        "This watch has sent more fixes than its budget allows (20,000 per 10 minutes). Keep them queued and retry later."
    )]
    IngestBudget,
    #[error(
        "The watch's clock is too far from the cloud's. Let the watch set its time, then retry."
    )]
    ClockSkew,
    #[error(
        "Waymark cannot store or read data right now. Nothing was changed; try again in a few seconds."
    )]
    Unavailable,
    #[error("Too many open streams for this account. Close one, then try again.")]
    TooManyStreams,
    #[error("The family's list of computers was refused: {0}.")]
    InvalidRoster(&'static str),
    #[error(
        "Another of your family's computers changed the family's computers first. Reload the family, then try again."
    )]
    RosterConflict,
    #[error(
        "Another of your family's computers saved the zones first. Open the zones again, then make your change."
    )]
    ZonesConflict,
    #[error(
        "This approval was already answered or has ended; each code can be tried once. Start again with a new code."
    )]
    ApprovalSpent,
    #[error("Something went wrong on our side. Try again in a moment.")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::BodyTooLarge => ErrorCode::BodyTooLarge,
            Self::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Self::WrongOrigin => ErrorCode::WrongOrigin,
            Self::InvalidRedirectUri => ErrorCode::InvalidRedirectUri,
            Self::PasskeyRejected => ErrorCode::PasskeyRejected,
            Self::CeremonyExpired => ErrorCode::CeremonyExpired,
            Self::UnknownPasskey => ErrorCode::UnknownPasskey,
            Self::InvalidGrant(_) => ErrorCode::InvalidGrant,
            Self::UnsupportedGrantType => ErrorCode::UnsupportedGrantType,
            Self::InvalidClient => ErrorCode::InvalidClient,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::NotFound => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::LastPasskey => ErrorCode::LastPasskey,
            Self::UnknownDevice => ErrorCode::UnknownDevice,
            Self::BadSignature => ErrorCode::BadSignature,
            Self::UntrustedCertificate => ErrorCode::UntrustedCertificate,
            Self::HardwareKeyRequired => ErrorCode::HardwareKeyRequired,
            Self::Revoked => ErrorCode::Revoked,
            Self::NotPaired => ErrorCode::NotPaired,
            Self::SequenceReused => ErrorCode::SequenceReused,
            Self::ReplayedStatus => ErrorCode::ReplayedStatus,
            Self::InvalidBatch(_) => ErrorCode::InvalidBatch,
            Self::UnknownSetup => ErrorCode::UnknownSetup,
            Self::BatchTooLarge => ErrorCode::BatchTooLarge,
            Self::InvalidCode => ErrorCode::InvalidCode,
            Self::CodeExpired => ErrorCode::CodeExpired,
            Self::CodeUsed => ErrorCode::CodeUsed,
            Self::LocatorTaken => ErrorCode::LocatorTaken,
            Self::AlreadyPaired => ErrorCode::AlreadyPaired,
            Self::AlreadyYours => ErrorCode::AlreadyYours,
            Self::TooManyAttempts => ErrorCode::TooManyAttempts,
            Self::ClockSkew => ErrorCode::ClockSkew,
            Self::RateLimited | Self::IngestBudget | Self::TooManyInvitations => {
                ErrorCode::RateLimited
            }
            Self::Unavailable => ErrorCode::Unavailable,
            Self::TooManyStreams => ErrorCode::TooManyStreams,
            Self::InvalidRoster(_) => ErrorCode::InvalidRoster,
            Self::RosterConflict => ErrorCode::RosterConflict,
            Self::ZonesConflict => ErrorCode::ZonesConflict,
            Self::ApprovalSpent => ErrorCode::ApprovalSpent,
            Self::RoleForbids(_) => ErrorCode::RoleForbids,
            Self::InvitationInvalid => ErrorCode::InvitationInvalid,
            Self::FamilyNotEmpty(_) => ErrorCode::FamilyNotEmpty,
            Self::FounderStays => ErrorCode::FounderStays,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::WrongOrigin => StatusCode::FORBIDDEN,
            Self::InvalidClient
            | Self::Unauthenticated
            | Self::UnknownDevice
            | Self::BadSignature
            | Self::UntrustedCertificate => StatusCode::UNAUTHORIZED,
            Self::Revoked => StatusCode::GONE,
            Self::HardwareKeyRequired | Self::RoleForbids(_) => StatusCode::FORBIDDEN,
            Self::InvitationInvalid => StatusCode::NOT_FOUND,
            Self::NotPaired
            | Self::UnknownSetup
            | Self::SequenceReused
            | Self::ReplayedStatus
            | Self::AlreadyPaired
            | Self::AlreadyYours
            | Self::LocatorTaken
            | Self::RosterConflict
            | Self::ZonesConflict
            | Self::ApprovalSpent
            | Self::FamilyNotEmpty(_)
            | Self::FounderStays => StatusCode::CONFLICT,
            Self::TooManyAttempts
            | Self::RateLimited
            | Self::TooManyInvitations
            | Self::IngestBudget
            | Self::TooManyStreams => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::LastPasskey => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// True for failures that pass by themselves: the request may be retried
/// unchanged later, so it is answered 503 with `Retry-After`, and a watch
/// keeps its queue.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite primary result codes (extended codes keep them in the low byte).
            if let Ok(n) = code.parse::<i32>() {
                return matches!(
                    n & 0xff,
                    5 /* BUSY */ | 6 /* LOCKED */ | 7 /* NOMEM */ | 8 /* READONLY */
                        | 10 /* IOERR */ | 13 /* FULL */ | 14 /* CANTOPEN */ | 15 /* PROTOCOL */
                );
            }
            // PostgreSQL SQLSTATE classes: connection exceptions, insufficient
            // resources (disk full), operator intervention (shutdown), and
            // serialisation failures / deadlocks.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || code == "40001"
                || code == "40P01"
        }
        _ => false,
    }
}

/// Seconds a client should wait after a 503 before trying again.
pub const RETRY_AFTER_SECS: u64 = 5;

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            // Logged once here; the client hears 503 and retries unchanged.
            tracing::warn!(error = %e, "database unavailable; answering 503");
            Self::Unavailable
        } else {
            Self::Internal(e.into())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            // The chain names the failing operation; it never carries request secrets.
            tracing::error!(error = %format!("{e:#}"), "request failed");
        }
        let status = self.status();
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"waymark\""),
            );
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => {
                Self::UnsupportedMediaType("Send the body as application/json.".into())
            }
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::BodyTooLarge
            }
            other => {
                Self::InvalidRequest(format!("The JSON body is not valid: {}", other.body_text()))
            }
        }
    }
}

impl From<FormRejection> for ApiError {
    fn from(r: FormRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::BodyTooLarge;
        }
        if r.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            return Self::UnsupportedMediaType(
                "Send the body as application/x-www-form-urlencoded.".into(),
            );
        }
        Self::InvalidRequest(format!("The form body is not valid: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::InvalidRequest(format!("The query string is not valid: {}", r.body_text()))
    }
}
