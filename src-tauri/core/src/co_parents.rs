//! Co-parents on this computer (issue 13, design §14): the family's members
//! and invitations, and joining or leaving a family. The cloud enforces the
//! roles; the keys follow the computers: after joining, this computer has
//! no key for the new family and waits for approval from one of its
//! computers, exactly as a parent's second computer does.

use reqwest::Method;
use waymark_protocol::co_parents::{
    FamilyMembers, FamilyRole, INVITATION_LINK_PREFIX, Invitation, InvitationCode,
    InvitationCodeBody, InvitationPreview, NewInvitation, RoleChange,
};
use waymark_protocol::error::ErrorCode;

use crate::Core;
use crate::error::AppError;
use crate::family::FamilyKeysView;
use crate::watches::path_id;

/// The invitation link among a program's arguments (the desktop starts
/// `waymark waymark://invite/…` when a parent opens one), as the app shows
/// it; anything else is ignored.
pub fn invitation_in(args: &[String]) -> Option<String> {
    args.iter()
        .filter(|a| a.trim().starts_with(INVITATION_LINK_PREFIX))
        .find_map(|a| InvitationCode::parse(a))
        .map(|code| code.link())
}

impl Core {
    /// Keeps an invitation link the app was opened with for the window.
    pub fn hold_invitation(&self, link: String) {
        *self.invitation.lock().unwrap_or_else(|e| e.into_inner()) = Some(link);
    }

    /// The invitation link the app was opened with, once.
    pub fn take_invitation(&self) -> Option<String> {
        self.invitation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The family's members and roles (and, for an owner, open invitations).
    pub async fn family_members(&self) -> Result<FamilyMembers, AppError> {
        self.get("/api/v1/family/members").await
    }

    /// A new invitation with `role`: its code and link, shown this once.
    pub async fn invite(&self, role: FamilyRole) -> Result<Invitation, AppError> {
        self.send_json(
            Method::POST,
            "/api/v1/family/invitations",
            &NewInvitation { role },
        )
        .await
    }

    pub async fn cancel_invitation(&self, id: &str) -> Result<(), AppError> {
        let path = format!("/api/v1/family/invitations/{}", path_id(id)?);
        self.send_empty::<()>(Method::DELETE, &path, None).await
    }

    pub async fn set_member_role(
        &self,
        account_id: &str,
        role: FamilyRole,
    ) -> Result<(), AppError> {
        let path = format!("/api/v1/family/members/{}", path_id(account_id)?);
        self.send_empty(Method::PATCH, &path, Some(&RoleChange { role }))
            .await
    }

    /// Removes a member (an owner's action). The family's computers replace
    /// the key at once, so nothing the watches report from now on is
    /// readable by the removed member's computers.
    pub async fn remove_member(&self, account_id: &str) -> Result<FamilyKeysView, AppError> {
        let path = format!("/api/v1/family/members/{}", path_id(account_id)?);
        self.send_empty::<()>(Method::DELETE, &path, None).await?;
        self.family_keys().await
    }

    /// Leaves the family this account joined: back to its own family (and
    /// this computer's keys for it, if it kept them).
    pub async fn leave_family(&self) -> Result<FamilyKeysView, AppError> {
        let me = self.me().await?;
        let path = format!("/api/v1/family/members/{}", path_id(&me.account_id)?);
        self.send_empty::<()>(Method::DELETE, &path, None).await?;
        self.family_changed().await
    }

    /// What an invitation is for (family, who invited, role), before accepting.
    pub async fn preview_invitation(&self, typed: &str) -> Result<InvitationPreview, AppError> {
        let code = InvitationCode::parse(typed).ok_or(AppError::BadInvitation)?;
        self.send_json(
            Method::POST,
            "/api/v1/invitations/preview",
            &InvitationCodeBody {
                code: code.display(),
            },
        )
        .await
        .map_err(invitation_error)
    }

    /// Joins the invitation's family. This computer then asks the family's
    /// computers for the keys ("waiting for approval").
    pub async fn accept_invitation(&self, typed: &str) -> Result<FamilyKeysView, AppError> {
        let code = InvitationCode::parse(typed).ok_or(AppError::BadInvitation)?;
        let _joined: FamilyMembers = self
            .send_json(
                Method::POST,
                "/api/v1/invitations/accept",
                &InvitationCodeBody {
                    code: code.display(),
                },
            )
            .await
            .map_err(invitation_error)?;
        self.family_changed().await
    }

    /// After a change of family: forget the join request made for the old
    /// one and bring this computer's keys in step with the new one.
    async fn family_changed(&self) -> Result<FamilyKeysView, AppError> {
        self.forget_join_request().await;
        self.family_keys().await
    }
}

fn invitation_error(e: AppError) -> AppError {
    match e {
        AppError::Cloud {
            code: ErrorCode::InvitationInvalid,
            ..
        } => AppError::BadInvitation,
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_invitation_link_among_the_arguments_is_taken() {
        let code = InvitationCode::generate();
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            invitation_in(&args(&["/usr/bin/waymark", &code.link()])),
            Some(code.link())
        );
        assert_eq!(invitation_in(&args(&["/usr/bin/waymark"])), None);
        // A bare code on the command line is not a link the desktop opened.
        assert_eq!(invitation_in(&args(&["waymark", &code.display()])), None);
        assert_eq!(
            invitation_in(&args(&["waymark", "waymark://invite/not-a-code"])),
            None
        );
    }
}
