//! Co-parents (issue 13, `docs/end-to-end-encryption.md` §14): a family's
//! members and what each role may do, and the invitations that add a member.
//! The role table lives here so the cloud (which enforces it) and the app
//! (which hides what a role cannot do) read the same one.

use serde::{Deserialize, Serialize};

use crate::time::UnixMillis;

/// What a member may do in the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum FamilyRole {
    /// Pairs, revokes and renames watches, invites and removes members,
    /// changes roles and the retention setting; and sees what a guardian sees.
    Owner,
    /// Sees the family's watches, live map, history and alerts.
    Guardian,
}

/// Something a member asks the cloud to do that not every role may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyAction {
    /// Watch list, live map, history, the family's computers and keys.
    SeeWatches,
    /// Pair, revoke or rename a watch.
    ManageWatches,
    /// Invite, remove members, change roles.
    ManageMembers,
    /// How long location history is kept.
    SetRetention,
    /// Draw, change and delete safe zones (issue 16: any parent).
    EditZones,
}

impl FamilyRole {
    /// Least privilege: a guardian sees, an owner also decides.
    pub fn allows(self, action: FamilyAction) -> bool {
        match self {
            FamilyRole::Owner => true,
            FamilyRole::Guardian => {
                matches!(action, FamilyAction::SeeWatches | FamilyAction::EditZones)
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FamilyRole::Owner => "owner",
            FamilyRole::Guardian => "guardian",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "owner" => Some(FamilyRole::Owner),
            "guardian" => Some(FamilyRole::Guardian),
            _ => None,
        }
    }
}

impl TryFrom<String> for FamilyRole {
    type Error = crate::ids::InvalidId;

    /// For rows read back from the database.
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw).ok_or(crate::ids::InvalidId)
    }
}

/// How long an invitation can be used.
pub const INVITATION_TTL_MS: UnixMillis = 7 * 24 * 3600 * 1000;
/// Open invitations a family may have at once.
pub const MAX_OPEN_INVITATIONS: i64 = 10;
/// The link form of an invitation code.
pub const INVITATION_LINK_PREFIX: &str = "waymark://invite/";

/// An invitation's secret: 128 random bits, shown as 26 characters or as a
/// `waymark://invite/…` link. The cloud keeps only its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct InvitationCode([u8; 16]);

impl InvitationCode {
    pub fn generate() -> Self {
        Self(crate::typed_code::random_128())
    }

    /// Accepts the code as typed (see [`crate::typed_code::parse`]) or the link.
    pub fn parse(input: &str) -> Option<Self> {
        let input = input.trim();
        let code = input.strip_prefix(INVITATION_LINK_PREFIX).unwrap_or(input);
        crate::typed_code::parse(code).map(Self)
    }

    pub fn display(&self) -> String {
        crate::typed_code::display(&self.0)
    }

    pub fn link(&self) -> String {
        format!(
            "{INVITATION_LINK_PREFIX}{}",
            self.display().replace('-', "")
        )
    }

    /// What the cloud stores and looks up: SHA-256 of the canonical form,
    /// so every way of typing the code finds the same row.
    pub fn lookup_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        crate::ids::hex(&Sha256::digest(self.0))
    }
}

impl std::fmt::Debug for InvitationCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InvitationCode(…)")
    }
}

/// One member of the family, as every member sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FamilyMember {
    pub account_id: String,
    pub name: String,
    pub role: FamilyRole,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub joined_at: UnixMillis,
    /// The account that founded the family: always an owner, never removed.
    pub founder: bool,
    /// The caller's own account.
    pub you: bool,
}

/// An open invitation, as the family's owners see it (never its code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InvitationInfo {
    pub id: String,
    pub role: FamilyRole,
    pub invited_by: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: UnixMillis,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub expires_at: UnixMillis,
}

/// `GET /api/v1/family/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FamilyMembers {
    /// The founder's name: what an invitee is shown before joining.
    pub family_name: String,
    pub your_role: FamilyRole,
    pub members: Vec<FamilyMember>,
    /// Open invitations; only owners see them.
    pub invitations: Vec<InvitationInfo>,
}

/// `POST /api/v1/family/invitations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    pub role: FamilyRole,
}

/// A new invitation: the only time its code is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Invitation {
    pub id: String,
    /// 26 characters in groups of five.
    pub code: String,
    /// The same code as a `waymark://invite/…` link.
    pub link: String,
    pub role: FamilyRole,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub expires_at: UnixMillis,
}

/// `POST /api/v1/invitations/preview` and `/accept`: the code as the invitee typed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InvitationCodeBody {
    pub code: String,
}

/// What an invitee is shown before accepting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InvitationPreview {
    pub family_name: String,
    pub invited_by: String,
    pub role: FamilyRole,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub expires_at: UnixMillis,
}

/// `PATCH /api/v1/family/members/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub role: FamilyRole,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guardian_only_sees_and_an_owner_does_everything() {
        use FamilyAction::*;
        for action in [SeeWatches, ManageWatches, ManageMembers, SetRetention] {
            assert!(FamilyRole::Owner.allows(action));
            assert_eq!(FamilyRole::Guardian.allows(action), action == SeeWatches);
        }
        for role in [FamilyRole::Owner, FamilyRole::Guardian] {
            assert_eq!(FamilyRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(FamilyRole::parse("admin"), None);
    }

    #[test]
    fn the_code_and_its_link_find_the_same_invitation() {
        let code = InvitationCode::generate();
        let by_code = InvitationCode::parse(&code.display()).unwrap();
        let by_link = InvitationCode::parse(&code.link()).unwrap();
        assert_eq!(by_code.lookup_hash(), code.lookup_hash());
        assert_eq!(by_link.lookup_hash(), code.lookup_hash());
        assert_ne!(InvitationCode::generate().lookup_hash(), code.lookup_hash());
        assert!(InvitationCode::parse("waymark://invite/short").is_none());
        assert!(!format!("{code:?}").contains(&code.display()[..5]));
    }
}
