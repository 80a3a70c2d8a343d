//! Co-parents' SQL (issue 13, design §14): a family's members and roles,
//! invitations (only the code's hash is kept), joining, leaving and removal.
//! Every change is one transaction under the family's lock, recorded in the
//! family's activity log with the member who did it.

use waymark_protocol::co_parents::{
    FamilyMember, FamilyMembers, FamilyRole, INVITATION_TTL_MS, InvitationInfo, InvitationPreview,
    MAX_OPEN_INVITATIONS,
};
use waymark_protocol::ids::{AccountId, FamilyId, InvitationId, SessionId};

use super::{DbResult, LockScope, Store, Tx, record};

/// What accepting an invitation led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The account is now a member of this family.
    Joined(FamilyId),
    /// Unknown, used, cancelled or expired: all alike.
    Invalid,
    /// The account cannot leave its own family (why, for a person).
    NotEmpty(&'static str),
}

/// What changing or removing a member led to.
#[derive(Debug, PartialEq, Eq)]
pub enum MemberChange {
    Done,
    /// Not a member of this family (or no such account): like not found.
    NotFound,
    /// The founder stays an owner and a member.
    Founder,
}

impl Store {
    /// The family's members (and, for an owner, its open invitations).
    /// Invitations past their 7 days are marked expired first, in the log too.
    pub async fn family_members(
        &self,
        family: &FamilyId,
        me: &AccountId,
        role: FamilyRole,
    ) -> DbResult<FamilyMembers> {
        self.expire_invitations(family).await?;
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT m.account_id, a.display_name, m.role, m.joined_at FROM family_members m
             JOIN accounts a ON a.id = m.account_id WHERE m.family_id = $1 ORDER BY m.joined_at, m.account_id",
        )
        .bind(family.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut members = Vec::with_capacity(rows.len());
        for (account_id, name, role, joined_at) in rows {
            members.push(FamilyMember {
                founder: account_id == family.as_str(),
                you: account_id == me.as_str(),
                account_id,
                name,
                role: FamilyRole::try_from(role).map_err(|e| sqlx::Error::Decode(e.into()))?,
                joined_at,
            });
        }
        let invitations = if role == FamilyRole::Owner {
            self.open_invitations(family).await?
        } else {
            Vec::new()
        };
        Ok(FamilyMembers {
            family_name: self.family_name(family).await?,
            your_role: role,
            members,
            invitations,
        })
    }

    /// The accounts that are members of `family` now.
    pub async fn member_ids(&self, family: &FamilyId) -> DbResult<Vec<AccountId>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT account_id FROM family_members WHERE family_id = $1")
                .bind(family.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(id,)| AccountId::try_from(id).map_err(|e| sqlx::Error::Decode(e.into())))
            .collect()
    }

    /// The account's role, if it is a member of `family`.
    pub async fn role_in(
        &self,
        family: &FamilyId,
        account: &AccountId,
    ) -> DbResult<Option<FamilyRole>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT role FROM family_members WHERE account_id = $1 AND family_id = $2",
        )
        .bind(account.as_str())
        .bind(family.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(role,)| FamilyRole::try_from(role).map_err(|e| sqlx::Error::Decode(e.into())))
            .transpose()
    }

    /// The founder's name, which names the family.
    async fn family_name(&self, family: &FamilyId) -> DbResult<String> {
        self.account(family.as_str())
            .await?
            .map(|a| a.display_name)
            .ok_or(sqlx::Error::RowNotFound)
    }

    async fn open_invitations(&self, family: &FamilyId) -> DbResult<Vec<InvitationInfo>> {
        let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT i.id, i.role, a.display_name, i.created_at, i.expires_at FROM invitations i
             JOIN accounts a ON a.id = i.created_by
             WHERE i.family_id = $1 AND i.state = 'open' ORDER BY i.created_at, i.id",
        )
        .bind(family.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, role, invited_by, created_at, expires_at)| {
                Ok(InvitationInfo {
                    id,
                    role: FamilyRole::try_from(role).map_err(|e| sqlx::Error::Decode(e.into()))?,
                    invited_by,
                    created_at,
                    expires_at,
                })
            })
            .collect()
    }

    async fn expire_invitations(&self, family: &FamilyId) -> DbResult<()> {
        let now = self.now();
        let (due,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM invitations WHERE family_id = $1 AND state = 'open' AND expires_at <= $2",
        )
        .bind(family.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        if due == 0 {
            return Ok(());
        }
        let mut tx = self.write_tx(LockScope::Family(family)).await?;
        let expired: Vec<(String,)> = sqlx::query_as(
            "UPDATE invitations SET state = 'expired', ended_at = $2
             WHERE family_id = $1 AND state = 'open' AND expires_at <= $2 RETURNING role",
        )
        .bind(family.as_str())
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for (role,) in expired {
            record(
                &mut tx,
                now,
                family,
                "invitation.expired",
                None,
                &format!("An invitation to join as {role} expired unused"),
            )
            .await?;
        }
        tx.commit().await
    }

    /// Stores a new invitation (its code's hash) made by `by`; `None` if the
    /// family has [`MAX_OPEN_INVITATIONS`] open already.
    pub async fn create_invitation(
        &self,
        family: &FamilyId,
        by: (&AccountId, &SessionId),
        role: FamilyRole,
        code_hash: &str,
    ) -> DbResult<Option<(InvitationId, i64)>> {
        self.expire_invitations(family).await?;
        let now = self.now();
        let mut tx = self.write_tx(LockScope::Family(family)).await?;
        let (open,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM invitations WHERE family_id = $1 AND state = 'open'",
        )
        .bind(family.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if open >= MAX_OPEN_INVITATIONS {
            return Ok(None);
        }
        let id = InvitationId::random();
        let expires_at = now + INVITATION_TTL_MS;
        sqlx::query("INSERT INTO invitations (id, family_id, code_hash, role, created_by, created_at, expires_at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open')")
            .bind(id.as_str())
            .bind(family.as_str())
            .bind(code_hash)
            .bind(role.as_str())
            .bind(by.0.as_str())
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            now,
            family,
            "invitation.made",
            Some(by.1.as_str()),
            &format!("An invitation to join as {} was made", role.as_str()),
        )
        .await?;
        tx.commit().await?;
        Ok(Some((id, expires_at)))
    }

    /// Whether `id` is an open invitation of the family.
    pub async fn invitation_open(&self, family: &FamilyId, id: &InvitationId) -> DbResult<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM invitations WHERE id = $1 AND family_id = $2 AND state = 'open' AND expires_at > $3",
        )
        .bind(id.as_str())
        .bind(family.as_str())
        .bind(self.now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Cancels an open invitation of the family; false if there is none.
    pub async fn cancel_invitation(
        &self,
        family: &FamilyId,
        id: &InvitationId,
        actor: &SessionId,
    ) -> DbResult<bool> {
        let now = self.now();
        let mut tx = self.write_tx(LockScope::Family(family)).await?;
        let done: Option<(String,)> = sqlx::query_as(
            "UPDATE invitations SET state = 'cancelled', ended_at = $1
             WHERE id = $2 AND family_id = $3 AND state = 'open' AND expires_at > $1 RETURNING role",
        )
        .bind(now)
        .bind(id.as_str())
        .bind(family.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((role,)) = done else {
            return Ok(false);
        };
        record(
            &mut tx,
            now,
            family,
            "invitation.cancelled",
            Some(actor.as_str()),
            &format!("An invitation to join as {role} was cancelled"),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// What the invitee is shown before accepting: `None` unless the code
    /// names an open invitation.
    pub async fn invitation_preview(&self, code_hash: &str) -> DbResult<Option<InvitationPreview>> {
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT f.display_name, b.display_name, i.role, i.expires_at FROM invitations i
             JOIN accounts f ON f.id = i.family_id JOIN accounts b ON b.id = i.created_by
             WHERE i.code_hash = $1 AND i.state = 'open' AND i.expires_at > $2",
        )
        .bind(code_hash)
        .bind(self.now())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(family_name, invited_by, role, expires_at)| {
            Ok(InvitationPreview {
                family_name,
                invited_by,
                role: FamilyRole::try_from(role).map_err(|e| sqlx::Error::Decode(e.into()))?,
                expires_at,
            })
        })
        .transpose()
    }

    /// Spends the invitation and moves `account` into its family, if the
    /// account may leave its own: it has no other members and no watch.
    /// The family it leaves stays as it was (keys, history of revoked
    /// watches), for when it comes back.
    pub async fn accept_invitation(
        &self,
        code_hash: &str,
        account: &AccountId,
        own_family: &FamilyId,
        session: &SessionId,
    ) -> DbResult<Accepted> {
        let now = self.now();
        let mut tx = self.write_tx(LockScope::Family(own_family)).await?;
        let (others,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM family_members WHERE family_id = $1 AND account_id <> $2",
        )
        .bind(own_family.as_str())
        .bind(account.as_str())
        .fetch_one(&mut *tx)
        .await?;
        // Checked before the code is spent: a refusal leaves it usable.
        let target: Option<(String,)> = sqlx::query_as(
            "SELECT family_id FROM invitations WHERE code_hash = $1 AND state = 'open' AND expires_at > $2",
        )
        .bind(code_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((target,)) = target else {
            return Ok(Accepted::Invalid);
        };
        if target == own_family.as_str() {
            return Ok(Accepted::NotEmpty(
                "You are already a member of this family.",
            ));
        }
        if own_family.as_str() != account.as_str() {
            return Ok(Accepted::NotEmpty(
                "You are a member of another family. Leave it first (Family, then Leave), then accept this invitation.",
            ));
        }
        if others > 0 {
            return Ok(Accepted::NotEmpty(
                "Your own family has other members. Remove them first, then accept this invitation.",
            ));
        }
        let (watches,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM bindings WHERE account_id = $1 AND revoked_at IS NULL",
        )
        .bind(own_family.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if watches > 0 {
            return Ok(Accepted::NotEmpty(
                "Your account has its own watches. Revoke them first (a watch belongs to one family), then accept this invitation.",
            ));
        }
        let spent: Option<(String, String)> = sqlx::query_as(
            "UPDATE invitations SET state = 'used', ended_at = $1, used_by = $2
             WHERE code_hash = $3 AND state = 'open' AND expires_at > $1 RETURNING family_id, role",
        )
        .bind(now)
        .bind(account.as_str())
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((family, role)) = spent else {
            return Ok(Accepted::Invalid);
        };
        let family = FamilyId::try_from(family).map_err(|e| sqlx::Error::Decode(e.into()))?;
        // Invitations to the family it leaves end: nobody may join a family
        // none of whose members is there.
        sqlx::query(
            "UPDATE invitations SET state = 'cancelled', ended_at = $1 WHERE family_id = $2 AND state = 'open'",
        )
        .bind(now)
        .bind(own_family.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE family_members SET family_id = $1, role = $2, joined_at = $3 WHERE account_id = $4",
        )
        .bind(family.as_str())
        .bind(&role)
        .bind(now)
        .bind(account.as_str())
        .execute(&mut *tx)
        .await?;
        let name = display_name(&mut tx, account).await?;
        record(
            &mut tx,
            now,
            &family,
            "member.joined",
            Some(session.as_str()),
            &format!("{name} accepted an invitation and joined the family as {role}"),
        )
        .await?;
        tx.commit().await?;
        Ok(Accepted::Joined(family))
    }

    /// Gives `member` of the family a new role.
    pub async fn set_role(
        &self,
        family: &FamilyId,
        member: &AccountId,
        role: FamilyRole,
        actor: &SessionId,
    ) -> DbResult<MemberChange> {
        let now = self.now();
        let mut tx = self.write_tx(LockScope::Family(family)).await?;
        if let Some(refused) = refuse_change(&mut tx, family, member).await? {
            return Ok(refused);
        }
        sqlx::query("UPDATE family_members SET role = $1 WHERE account_id = $2 AND family_id = $3")
            .bind(role.as_str())
            .bind(member.as_str())
            .bind(family.as_str())
            .execute(&mut *tx)
            .await?;
        let name = display_name(&mut tx, member).await?;
        record(
            &mut tx,
            now,
            family,
            "member.role_changed",
            Some(actor.as_str()),
            &format!("{name} is now {}", role.as_str()),
        )
        .await?;
        tx.commit().await?;
        Ok(MemberChange::Done)
    }

    /// Takes `member` out of the family (removed by an owner, or leaving):
    /// they are back in their own family at once, and the family's computers
    /// see their computers as gone (so the next one online replaces the key).
    pub async fn remove_member(
        &self,
        family: &FamilyId,
        member: &AccountId,
        actor: &SessionId,
    ) -> DbResult<MemberChange> {
        let now = self.now();
        let mut tx = self.write_tx(LockScope::Family(family)).await?;
        if let Some(refused) = refuse_change(&mut tx, family, member).await? {
            return Ok(refused);
        }
        sqlx::query(
            "UPDATE family_members SET family_id = account_id, role = 'owner', joined_at = $1 WHERE account_id = $2",
        )
        .bind(now)
        .bind(member.as_str())
        .execute(&mut *tx)
        .await?;
        // Their computers' requests to be approved end with their membership.
        sqlx::query(
            "DELETE FROM join_requests WHERE account_id = $1 AND session_id IN (SELECT id FROM sessions WHERE account_id = $2)",
        )
        .bind(family.as_str())
        .bind(member.as_str())
        .execute(&mut *tx)
        .await?;
        let name = display_name(&mut tx, member).await?;
        let (acting,): (String,) = sqlx::query_as("SELECT account_id FROM sessions WHERE id = $1")
            .bind(actor.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let detail = if acting == member.as_str() {
            format!("{name} left the family")
        } else {
            format!("{name} was removed from the family")
        };
        record(
            &mut tx,
            now,
            family,
            "member.removed",
            Some(actor.as_str()),
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(MemberChange::Done)
    }
}

/// Why `member` cannot be changed or removed, if it cannot: not a member of
/// the family (not found), or its founder.
async fn refuse_change(
    tx: &mut Tx,
    family: &FamilyId,
    member: &AccountId,
) -> DbResult<Option<MemberChange>> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM family_members WHERE account_id = $1 AND family_id = $2")
            .bind(member.as_str())
            .bind(family.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    Ok(if row.is_none() {
        Some(MemberChange::NotFound)
    } else if member.as_str() == family.as_str() {
        Some(MemberChange::Founder)
    } else {
        None
    })
}

async fn display_name(tx: &mut Tx, account: &AccountId) -> DbResult<String> {
    let (name,): (String,) = sqlx::query_as("SELECT display_name FROM accounts WHERE id = $1")
        .bind(account.as_str())
        .fetch_one(&mut **tx)
        .await?;
    Ok(name)
}
