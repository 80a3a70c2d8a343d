//! The account screen: who is signed in, passkeys, and the computers signed
//! in to the account. Adding a passkey happens in the browser, like sign-in.

use reqwest::Method;
use waymark_protocol::account::{
    ActivityEntry, Ended, EnrollmentLink, Me, PasskeyInfo, Rename, SessionInfo,
};

use crate::Core;
use crate::error::AppError;
use crate::signin::Browser;
use crate::watches::path_id;

impl Core {
    pub async fn me(&self) -> Result<Me, AppError> {
        self.get("/api/v1/me").await
    }

    pub async fn passkeys(&self) -> Result<Vec<PasskeyInfo>, AppError> {
        self.get("/api/v1/passkeys").await
    }

    pub async fn rename_passkey(&self, id: &str, name: &str) -> Result<(), AppError> {
        let path = format!("/api/v1/passkeys/{}", path_id(id)?);
        self.send_empty(Method::PATCH, &path, Some(&Rename { name: name.into() }))
            .await
    }

    pub async fn remove_passkey(&self, id: &str) -> Result<(), AppError> {
        let path = format!("/api/v1/passkeys/{}", path_id(id)?);
        self.send_empty::<()>(Method::DELETE, &path, None).await
    }

    /// Opens the one-time "add a passkey" page in the browser.
    pub async fn add_passkey(&self, browser: &dyn Browser) -> Result<(), AppError> {
        let link: EnrollmentLink = self
            .send_json(
                Method::POST,
                "/api/v1/passkeys/enrollments",
                &serde_json::json!({}),
            )
            .await?;
        // Only ever open the cloud's own page.
        let url = url::Url::parse(&link.url).map_err(|_| AppError::BadAnswer)?;
        if url.origin() != self.cloud().origin().origin() {
            return Err(AppError::BadAnswer);
        }
        browser.open(url.as_str())
    }

    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, AppError> {
        self.get("/api/v1/sessions").await
    }

    /// Ends one signed-in computer. Ending this computer's own session signs out.
    pub async fn end_session(&self, id: &str) -> Result<(), AppError> {
        let path = format!("/api/v1/sessions/{}", path_id(id)?);
        self.send_empty::<()>(Method::DELETE, &path, None).await?;
        let me = self.me().await;
        if matches!(me, Err(AppError::SignedOut)) {
            self.tokens().forget().await?;
        }
        Ok(())
    }

    /// The account's activity log, newest first: sign-ins, passkey and
    /// session changes, pairings, renames, revocations, and which computer.
    pub async fn activity(&self) -> Result<Vec<ActivityEntry>, AppError> {
        self.get("/api/v1/activity?limit=100").await
    }

    pub async fn end_other_sessions(&self) -> Result<u64, AppError> {
        let ended: Ended = self
            .send_json(
                Method::POST,
                "/api/v1/sessions/end-others",
                &serde_json::json!({}),
            )
            .await?;
        Ok(ended.ended)
    }
}
