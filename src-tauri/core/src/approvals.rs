//! Approving a computer (issue 13, `docs/end-to-end-encryption.md` §5): a
//! computer waiting for the family's keys asks to join; on a computer that
//! holds them the parent presses Approve and sees a 10-character code; typed
//! on the new computer, it runs SPAKE2 through the cloud's relay, both sides
//! confirm the key, and the trusted computer sends the next roster (listing
//! the new computer) and every epoch key sealed to it, under the exchange's
//! key. A wrong code fails on both screens and shares nothing; the cloud
//! gets one guess per request and cannot put its own key in either place.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use waymark_protocol::approval::{
    ApprovalAnswer, ApprovalCode, ApprovalOffer, JoinRequest, JoinState, NewJoinRequest,
    SealedApproval,
};
use waymark_protocol::code_exchange::{Answer, Parties, Purpose, Shower, Typer};
use waymark_protocol::family_roster::ApprovalBundle;
use waymark_protocol::ids::JoinRequestId;
use waymark_protocol::signing::{b64, unb64};

use crate::Core;
use crate::error::AppError;
use crate::family::FamilyKeysView;
use crate::family_keys::FamilyKeys;

/// How often a waiting side asks the cloud for the other side's message.
const POLL: Duration = Duration::from_millis(500);
/// How long the trusted computer waits for the code to be typed.
const WAIT_FOR_TYPING: Duration = Duration::from_secs(10 * 60);
/// How long the new computer waits for the trusted computer's answer.
const WAIT_FOR_APPROVAL: Duration = Duration::from_secs(60);
/// What both sides bind the sealed bundle to.
const BUNDLE_CONTEXT: &[u8] = b"waymark/approval-bundle/v1";

/// A computer asking to join, as the trusted computer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct JoinRequestInfo {
    pub id: String,
    /// The name the computer signed in with ("Office PC").
    pub name: String,
    /// The co-parent whose computer it is; `None` for another computer of
    /// the signed-in parent's own.
    pub member_name: Option<String>,
    #[ts(type = "number")]
    pub created_at: i64,
}

/// The exchanges this computer is in, by request id (they live in memory:
/// a restart starts again with a new code).
#[derive(Default)]
pub(crate) struct Approvals {
    showing: HashMap<String, Shower>,
    /// This computer's own join request, while it waits.
    asked: Option<String>,
}

fn request_path(id: &str) -> Result<String, AppError> {
    let id = JoinRequestId::parse(id).ok_or(AppError::BadAnswer)?;
    Ok(format!("/api/v1/family/join-requests/{id}"))
}

impl Core {
    /// On a computer that holds the keys: the computers asking to join.
    pub async fn join_requests(&self) -> Result<Vec<JoinRequestInfo>, AppError> {
        let requests: Vec<JoinRequest> = self.get("/api/v1/family/join-requests").await?;
        let mine = self.approvals.lock().await.asked.clone();
        let me = self.me().await?.account_id;
        Ok(requests
            .into_iter()
            .filter(|r| Some(&r.id) != mine.as_ref() && r.state == JoinState::Waiting)
            .map(|r| JoinRequestInfo {
                id: r.id,
                name: r.name,
                member_name: (r.member != me).then_some(r.member_name),
                created_at: r.created_at,
            })
            .collect())
    }

    /// Starts approving request `id`: makes the code the parent types on the
    /// new computer and sends the exchange's first message. Returns the
    /// code, grouped as shown.
    pub async fn start_approval(&self, id: &str) -> Result<String, AppError> {
        let keys = self.trusted_keys().await?;
        let path = request_path(id)?;
        let request: JoinRequest = self.get(&path).await?;
        let code = ApprovalCode::generate();
        let parties = Parties {
            purpose: Purpose::ApproveComputer,
            shower: keys.computer().signing_public().0.to_vec(),
            typer: request.signing.0.to_vec(),
        };
        let (shower, first) = Shower::start(parties, &code);
        let offer = ApprovalOffer {
            computer: keys.computer().signing_public(),
            message: b64(&first),
        };
        self.send_empty(Method::POST, &format!("{path}/offer"), Some(&offer))
            .await?;
        self.approvals
            .lock()
            .await
            .showing
            .insert(request.id, shower);
        Ok(code.display())
    }

    /// Waits for the new computer's answer to the code shown for `id`; if
    /// the code matched, publishes the roster listing it and sends it the
    /// family's keys. A wrong code ends the request and shares nothing.
    pub async fn finish_approval(&self, id: &str) -> Result<(), AppError> {
        let path = request_path(id)?;
        let shower = self
            .approvals
            .lock()
            .await
            .showing
            .remove(id)
            .ok_or(AppError::ApprovalEnded)?;
        let request = self
            .poll(&path, WAIT_FOR_TYPING, |r| r.answer.is_some())
            .await?;
        let answer = request.answer.as_ref().ok_or(AppError::ApprovalEnded)?;
        let answer = Answer {
            message: unb64(&answer.message).ok_or(AppError::BadAnswer)?,
            confirmation: unb64(&answer.confirmation)
                .and_then(|c| c.try_into().ok())
                .ok_or(AppError::BadAnswer)?,
        };
        let Ok((mut channel, confirmation)) = shower.finish(&answer) else {
            // One guess per request: this one is spent.
            let _ = self.send_empty::<()>(Method::DELETE, &path, None).await;
            return Err(AppError::ApprovalCodeWrong);
        };
        let bundle = match self.approve_in_keys(&request).await {
            Ok(bundle) => bundle,
            Err(e) => {
                // The new computer is waiting: end it now rather than let it time out.
                let _ = self.send_empty::<()>(Method::DELETE, &path, None).await;
                return Err(e);
            }
        };
        let sealed = channel.seal(
            &serde_json::to_vec(&bundle).map_err(|_| AppError::BadAnswer)?,
            BUNDLE_CONTEXT,
        );
        let approval = SealedApproval {
            confirmation: b64(&confirmation),
            sealed: b64(&sealed),
        };
        self.send_empty(Method::POST, &format!("{path}/approval"), Some(&approval))
            .await
    }

    /// Ends the exchange shown for `id` (the parent pressed Cancel): the
    /// waiting [`finish_approval`](Self::finish_approval) then ends too.
    pub async fn cancel_approval(&self, id: &str) -> Result<(), AppError> {
        let path = request_path(id)?;
        self.send_empty::<()>(Method::DELETE, &path, None).await
    }

    /// Adds the request's computer to the roster (published before the keys
    /// are sent, so the cloud holds the version the new computer will
    /// trust) and returns the bundle for it. If the cloud refuses the
    /// version, the key file is left as it was.
    async fn approve_in_keys(&self, request: &JoinRequest) -> Result<ApprovalBundle, AppError> {
        let _one = self.family_lock.lock().await;
        let (file, _) = self.family_key_file().await?;
        let mut keys = file.load().await?.ok_or(AppError::NotTrusted)?;
        // The cloud says whose computer it is; it can only name a member
        // (it checks the version), and the code typed on that computer is
        // what lets it in.
        let newcomer = waymark_protocol::roster::RosterEntry {
            name: request.name.clone(),
            member: request.member.clone(),
            signing: request.signing,
            sealing: request.sealing,
        };
        let bundle = keys
            .approve(&request.name, &request.member, &newcomer)
            .map_err(|_| AppError::NotTrusted)?;
        // Kept only once the cloud took it: a refused version (another
        // computer changed the family first) must not stay in this
        // computer's chain, or the cloud's chain would depart from it.
        let version = keys.trusted_roster().map_or(0, |t| t.roster().version);
        let update = keys.update_for(version).ok_or(AppError::NotTrusted)?;
        self.send_empty(Method::POST, "/api/v1/family/rosters", Some(&update))
            .await?;
        keys.mark_published(version);
        file.save(&keys).await?;
        Ok(bundle)
    }

    /// The family changed: a join request made for the old one is over.
    pub(crate) async fn forget_join_request(&self) {
        self.approvals.lock().await.asked = None;
    }

    /// On a computer waiting for approval: makes sure the family's computers
    /// see its join request.
    pub(crate) async fn ask_to_join(&self, keys: &FamilyKeys) -> Result<(), AppError> {
        let mut approvals = self.approvals.lock().await;
        if let Some(id) = &approvals.asked {
            let live: Result<JoinRequest, _> = self.get(&request_path(id)?).await;
            match live {
                Ok(r) if r.state != JoinState::Approved => {
                    return Ok(());
                }
                Ok(_)
                | Err(AppError::Cloud {
                    code: waymark_protocol::error::ErrorCode::NotFound,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        let request: JoinRequest = self
            .send_json(
                Method::POST,
                "/api/v1/family/join-requests",
                &NewJoinRequest {
                    signing: keys.computer().signing_public(),
                    sealing: keys.computer().sealing_public(),
                },
            )
            .await?;
        approvals.asked = Some(request.id);
        Ok(())
    }

    /// On a computer waiting for approval: the code the parent typed, from
    /// the trusted computer's screen. Answers once, then takes the family's
    /// keys if the trusted computer confirms the same code.
    pub async fn enter_approval_code(&self, typed: &str) -> Result<FamilyKeysView, AppError> {
        let code = ApprovalCode::parse(typed).ok_or(AppError::BadApprovalCode)?;
        let id = self
            .approvals
            .lock()
            .await
            .asked
            .clone()
            .ok_or(AppError::ApprovalEnded)?;
        let path = request_path(&id)?;
        let request = self
            .poll(&path, WAIT_FOR_APPROVAL, |r| r.offer.is_some())
            .await?;
        let offer = request.offer.as_ref().ok_or(AppError::ApprovalEnded)?;
        let first = unb64(&offer.message).ok_or(AppError::BadAnswer)?;
        let (file, _) = self.family_key_file().await?;
        let mut keys = file.load().await?.ok_or(AppError::ApprovalEnded)?;
        let parties = Parties {
            purpose: Purpose::ApproveComputer,
            shower: offer.computer.0.to_vec(),
            typer: keys.computer().signing_public().0.to_vec(),
        };
        let (typer, answer) =
            Typer::answer(parties, &code, &first).map_err(|_| AppError::BadAnswer)?;
        let answer = ApprovalAnswer {
            message: b64(&answer.message),
            confirmation: b64(&answer.confirmation),
        };
        self.send_empty(Method::POST, &format!("{path}/answer"), Some(&answer))
            .await?;
        self.approvals.lock().await.asked = None;
        let done = self
            .poll(&path, WAIT_FOR_APPROVAL, |r| r.approval.is_some())
            .await
            .map_err(|e| match e {
                // The trusted computer ended it: its check of the code failed.
                AppError::ApprovalEnded => AppError::ApprovalCodeWrong,
                e => e,
            })?;
        let approval = done.approval.as_ref().ok_or(AppError::ApprovalCodeWrong)?;
        let confirmation: [u8; 32] = unb64(&approval.confirmation)
            .and_then(|c| c.try_into().ok())
            .ok_or(AppError::BadAnswer)?;
        let mut channel = typer
            .confirm(&confirmation)
            .map_err(|_| AppError::ApprovalCodeWrong)?;
        let sealed = unb64(&approval.sealed).ok_or(AppError::BadAnswer)?;
        let bundle: ApprovalBundle = channel
            .open(&sealed, BUNDLE_CONTEXT)
            .ok()
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or(AppError::BadAnswer)?;
        // The roster naming this computer must be the showing computer's.
        if bundle.rosters.last().map(|r| r.signer) != Some(offer.computer) {
            return Err(AppError::FamilyRosterRefused);
        }
        let _one = self.family_lock.lock().await;
        keys.accept_approval(&bundle)
            .map_err(|_| AppError::FamilyRosterRefused)?;
        file.save(&keys).await?;
        drop(_one);
        self.family_keys().await
    }

    /// The trusted keys of the signed-in account, or why not.
    async fn trusted_keys(&self) -> Result<FamilyKeys, AppError> {
        match self.family_key_file().await?.0.load().await? {
            Some(keys) if keys.is_trusted() => Ok(keys),
            _ => Err(AppError::NotTrusted),
        }
    }

    /// Reads request `path` until `ready` says so, it ends, or `limit` passes.
    async fn poll(
        &self,
        path: &str,
        limit: Duration,
        ready: impl Fn(&JoinRequest) -> bool,
    ) -> Result<JoinRequest, AppError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let request: JoinRequest = match self.get(path).await {
                Err(AppError::Cloud {
                    code: waymark_protocol::error::ErrorCode::NotFound,
                    ..
                }) => return Err(AppError::ApprovalEnded),
                other => other?,
            };
            if ready(&request) {
                return Ok(request);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AppError::ApprovalTimedOut);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
