//! What can go wrong in the app, said for a parent: every variant carries a
//! machine-readable code (the UI chooses screens by it) and a sentence that
//! says what happened and what to do next.

use serde::Serialize;
use waymark_protocol::error::{ErrorBody, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No usable sign-in: never signed in, signed out, the session was ended
    /// elsewhere, or the refresh token was replayed and the cloud ended it.
    #[error("You are signed out. Sign in with your passkey to continue.")]
    SignedOut,
    /// The cloud could not be reached at all.
    #[error(
        "Can't reach the Waymark cloud. Check this computer's connection; Waymark will keep trying."
    )]
    Offline,
    /// TLS failed: the cloud's certificate is not the one this app trusts.
    #[error(
        "The cloud's certificate is not trusted by this app, so nothing was sent. Check the cloud address and the certificate settings."
    )]
    Untrusted,
    /// The cloud refused the request and said why.
    #[error("{message}")]
    Cloud {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    #[error(
        "The cloud sent an answer this app does not understand. Update Waymark, or try again later."
    )]
    BadAnswer,
    #[error("Sign-in was cancelled.")]
    SignInCancelled,
    #[error("Sign-in took too long and was stopped. Start again when you are ready.")]
    SignInTimedOut,
    #[error(
        "The browser came back with a sign-in that this app did not start, so it was ignored. Start again."
    )]
    SignInMismatch,
    #[error("A sign-in is already waiting in the browser. Finish it there, or cancel it first.")]
    SignInBusy,
    #[error("Could not open the web browser for sign-in: {0}")]
    Browser(String),
    #[error(
        "The system keychain is not available ({0}). Waymark keeps your sign-in there; unlock or start the keychain, then sign in again."
    )]
    Keychain(String),
    #[error(
        "That is not a Waymark pairing code. It has 12 letters and digits, like 7KQM-3XWD-9PRB."
    )]
    BadCode,
    #[error(
        "The code did not match the one the watch shows, so nothing was paired. The watch now shows a new code: type that one."
    )]
    PairingCodeWrong,
    #[error(
        "The watch did not answer. Keep it switched on and connected to the internet, then try again with the code it shows."
    )]
    WatchDidNotAnswer,
    #[error(
        "This watch's certificate is not from a watch maker this app trusts, so it was not paired. Check that it is a genuine Waymark watch (Settings: manufacturer CAs)."
    )]
    UntrustedWatch,
    #[error(
        "The cloud reported this watch as paired, but the watch's own confirmation did not check. Do not rely on it: revoke it and pair it again."
    )]
    PairingNotConfirmed,
    #[error(
        "No Waymark pairing code was found in that picture. Try a sharper picture, or type the code shown on the watch."
    )]
    NoCodeInPicture,
    #[error("{0}")]
    Settings(String),
    /// A zone the parent drew breaks a rule, or the zones do not fit.
    #[error("{0}")]
    Zone(String),
    #[error(
        "This update is not signed by Waymark, so it was refused and nothing was installed. Your Waymark is unchanged; tell Waymark's support if this keeps happening."
    )]
    UpdateRefused,
    #[error(
        "Could not check for updates ({0}). Check this computer's connection and the update feed in Settings; Waymark will try again later."
    )]
    UpdateUnreachable(String),
    #[error(
        "The update is genuine but could not be installed ({0}). Your Waymark is unchanged; try again, or install it with your package manager."
    )]
    UpdateFailed(String),
    #[error(
        "This computer's copy of your family's keys cannot be read ({0}). Locations stay hidden on this computer until another of your family's computers approves it again, or you restore with your recovery key."
    )]
    FamilyKeysUnreadable(String),
    #[error(
        "The cloud sent a list of your family's computers that does not follow the one this computer trusts, so it was refused. Nothing was changed and your family's keys stay on this computer; try again later, and tell Waymark's support if this keeps happening."
    )]
    FamilyRosterRefused,
    #[error(
        "That is not an approval code. It has 10 letters and digits, like 7KQM-3XWD-9P, and is shown on your other computer after you press Approve there."
    )]
    BadApprovalCode,
    #[error(
        "The code did not match, so nothing was shared. Press Approve again on your other computer and type the new code it shows."
    )]
    ApprovalCodeWrong,
    #[error(
        "This approval has ended (it was cancelled, used, or is more than 15 minutes old). Start again: press Approve on a computer that holds your family's keys."
    )]
    ApprovalEnded,
    #[error(
        "The other computer did not answer in time. Start again: press Approve on it and type the new code here."
    )]
    ApprovalTimedOut,
    #[error(
        "This computer does not hold your family's keys, so it cannot approve another computer or pair a watch. Do it on a computer that shows your family's locations (or approve this one from there first)."
    )]
    NotTrusted,
    #[error(
        "That is not a valid invitation: it may be mistyped, used, cancelled or expired. Check the code (26 characters) or ask for a new invitation."
    )]
    BadInvitation,
    #[error(
        "That is not a recovery key. It has 26 letters and digits in groups, as shown when your family's keys were made."
    )]
    BadRecoveryKey,
    #[error(
        "This is not your family's recovery key, so nothing was changed. Check each group and try again."
    )]
    RecoveryKeyWrong,
}

impl AppError {
    /// The stable code the UI switches on.
    pub fn code(&self) -> &str {
        match self {
            Self::SignedOut => "signed_out",
            Self::Offline => "offline",
            Self::Untrusted => "untrusted",
            // An answer that was not the error shape reads as `http_error`.
            Self::Cloud {
                code: ErrorCode::Unknown,
                ..
            } => "http_error",
            Self::Cloud { code, .. } => code.as_str(),
            Self::BadAnswer => "bad_answer",
            Self::SignInCancelled => "sign_in_cancelled",
            Self::SignInTimedOut => "sign_in_timed_out",
            Self::SignInMismatch => "sign_in_mismatch",
            Self::SignInBusy => "sign_in_busy",
            Self::Browser(_) => "browser",
            Self::Keychain(_) => "keychain",
            Self::BadCode => "bad_code",
            Self::PairingCodeWrong => "pairing_code_wrong",
            Self::WatchDidNotAnswer => "watch_did_not_answer",
            Self::UntrustedWatch => "untrusted_watch",
            Self::PairingNotConfirmed => "pairing_not_confirmed",
            Self::NoCodeInPicture => "no_code_in_picture",
            Self::Settings(_) => "settings",
            Self::Zone(_) => "zone_invalid",
            Self::UpdateRefused => "update_refused",
            Self::UpdateUnreachable(_) => "update_unreachable",
            Self::UpdateFailed(_) => "update_failed",
            Self::FamilyKeysUnreadable(_) => "family_keys_unreadable",
            Self::FamilyRosterRefused => "family_roster_refused",
            Self::BadApprovalCode => "bad_approval_code",
            Self::ApprovalCodeWrong => "approval_code_wrong",
            Self::ApprovalEnded => "approval_ended",
            Self::ApprovalTimedOut => "approval_timed_out",
            Self::NotTrusted => "not_trusted",
            Self::BadRecoveryKey => "bad_recovery_key",
            Self::BadInvitation => "bad_invitation",
            Self::RecoveryKeyWrong => "recovery_key_wrong",
        }
    }

    /// Builds the error for a cloud refusal from its `{error, message}` body.
    pub(crate) fn from_cloud(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(b) if b.error == ErrorCode::Unauthenticated => Self::SignedOut,
            Ok(b) => Self::Cloud {
                status,
                code: b.error,
                message: b.message,
            },
            Err(_) => Self::Cloud {
                status,
                code: ErrorCode::Unknown,
                message: format!(
                    "The cloud answered with an error ({status}). Try again in a moment."
                ),
            },
        }
    }

    pub(crate) fn from_transport(e: &reqwest::Error) -> Self {
        // A certificate refusal surfaces as a connect error with a rustls
        // error inside (possibly nested) io::Errors, which hide their payload
        // from `source()`: walk both ways.
        let mut stack: Vec<&(dyn std::error::Error + 'static)> = vec![e];
        while let Some(s) = stack.pop() {
            if s.downcast_ref::<rustls::Error>().is_some() {
                return Self::Untrusted;
            }
            if let Some(inner) = s
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                stack.push(inner);
            }
            if let Some(next) = s.source() {
                stack.push(next);
            }
        }
        if e.is_decode() {
            Self::BadAnswer
        } else {
            Self::Offline
        }
    }
}

/// How an [`AppError`] reaches the window (its `Serialize` below writes
/// exactly these two fields): declared for the generated TypeScript.
#[derive(ts_rs::TS)]
#[ts(rename = "AppError")]
#[allow(dead_code)] // only its TypeScript declaration is used
pub struct AppErrorShape {
    /// Stable and machine-readable, e.g. `offline`, `signed_out`, `update_refused`.
    code: String,
    /// A sentence for a person: what went wrong and what to do next.
    message: String,
}

/// What the UI receives: `{code, message}`, never a token or an internal detail.
impl Serialize for AppError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("AppError", 2)?;
        st.serialize_field("code", self.code())?;
        st.serialize_field("message", &self.to_string())?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_refusals_keep_their_code_and_sentence() {
        let e = AppError::from_cloud(
            410,
            br#"{"error":"code_expired","message":"This code has expired \u2014 make a new one on the watch."}"#,
        );
        assert_eq!(e.code(), "code_expired");
        assert_eq!(
            e.to_string(),
            "This code has expired — make a new one on the watch."
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["code"], "code_expired");
    }

    #[test]
    fn an_ended_session_reads_as_signed_out_and_garbage_as_http_error() {
        let e = AppError::from_cloud(401, br#"{"error":"unauthenticated","message":"x"}"#);
        assert!(matches!(e, AppError::SignedOut));
        let e = AppError::from_cloud(502, b"<html>bad gateway</html>");
        assert_eq!(e.code(), "http_error");
        assert!(e.to_string().contains("502"));
    }
}
