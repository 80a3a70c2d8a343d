//! Join requests: a new family computer asking for the family's keys, and
//! the approval exchange the cloud relays for it (issue 13, design §5).
//! Every step is one transaction under the family's lock, and each request
//! moves forward only: one offer, one answer, one approval. A second answer
//! is refused, so a relay (or anyone) gets one guess at the code per request.

use waymark_protocol::approval::{
    ApprovalAnswer, ApprovalOffer, JOIN_REQUEST_TTL_MS, JoinRequest, JoinState, NewJoinRequest,
    SealedApproval,
};
use waymark_protocol::ids::{FamilyId, JoinRequestId, SessionId};
use waymark_protocol::roster::SigningPublicKey;
use waymark_protocol::sealed_report::LocationPublicKey;
use waymark_protocol::signing::b64;

use super::{DbResult, LockScope, Store, Tx, record};

/// The most requests a family may have open at once.
pub const MAX_OPEN: i64 = 20;

/// One step of the exchange, by one of the family's computers.
pub enum Step<'a> {
    Offer(&'a ApprovalOffer),
    Answer(&'a ApprovalAnswer),
    Approve(&'a SealedApproval),
    End,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Done,
    /// No such open request in this family.
    NotFound,
    /// The request is past this step (spent, or approved).
    Spent,
    /// This computer may not take this step (e.g. approving itself).
    NotThisComputer(&'static str),
}

const COLUMNS: &str = "j.id, COALESCE(s.name, ''), j.signing, j.sealing, j.state, j.created_at, j.expires_at, j.offer, j.answer_message, j.answer_confirmation, j.approval_confirmation, j.approval_sealed, j.session_id, j.offer_session_id, COALESCE(s.account_id, ''), COALESCE(ja.display_name, '')";

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
);

/// A row, and the two sessions that may act on it.
struct Stored {
    request: JoinRequest,
    requester: String,
    offerer: Option<String>,
}

fn decode(row: Row) -> DbResult<Stored> {
    let bad = || sqlx::Error::Decode("a stored join request does not decode".into());
    let state = match row.4.as_str() {
        "waiting" => JoinState::Waiting,
        "offered" => JoinState::Offered,
        "answered" => JoinState::Answered,
        "approved" => JoinState::Approved,
        _ => return Err(bad()),
    };
    Ok(Stored {
        request: JoinRequest {
            id: row.0,
            name: row.1,
            member: row.14,
            member_name: row.15,
            signing: SigningPublicKey::parse(&row.2).ok_or_else(bad)?,
            sealing: LocationPublicKey::parse(&row.3).ok_or_else(bad)?,
            state,
            created_at: row.5,
            expires_at: row.6,
            offer: row
                .7
                .map(|json| serde_json::from_str(&json))
                .transpose()
                .map_err(|_| bad())?,
            answer: row
                .8
                .zip(row.9)
                .map(|(message, confirmation)| ApprovalAnswer {
                    message,
                    confirmation,
                }),
            approval: row
                .10
                .zip(row.11)
                .map(|(confirmation, sealed)| SealedApproval {
                    confirmation,
                    sealed,
                }),
        },
        requester: row.12,
        offerer: row.13,
    })
}

impl Store {
    /// Opens a request for the caller's computer; expired requests of the
    /// account go. An earlier request of the same computer stays readable
    /// (it was created, so it answers until it expires or is ended) but is
    /// no longer listed.
    /// `None`: the account has [`MAX_OPEN`] requests open already.
    pub async fn create_join_request(
        &self,
        family: &FamilyId,
        session: &SessionId,
        new: &NewJoinRequest,
    ) -> DbResult<Option<JoinRequest>> {
        let now = self.now();
        let mut tx = self.write_tx(LockScope::Account(family.as_str())).await?;
        sqlx::query("DELETE FROM join_requests WHERE account_id = $1 AND expires_at <= $2")
            .bind(family.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let (open,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM join_requests WHERE account_id = $1 AND state IN ('waiting', 'offered', 'answered')",
        )
        .bind(family.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if open >= MAX_OPEN {
            return Ok(None);
        }
        let id = JoinRequestId::random();
        sqlx::query("INSERT INTO join_requests (id, account_id, session_id, signing, sealing, state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, 'waiting', $6, $7)")
            .bind(id.as_str())
            .bind(family.as_str())
            .bind(session.as_str())
            .bind(b64(&new.signing.0))
            .bind(b64(&new.sealing.0))
            .bind(now)
            .bind(now + JOIN_REQUEST_TTL_MS)
            .execute(&mut *tx)
            .await?;
        let stored = one_in(&mut tx, family, id.as_str(), now)
            .await?
            .ok_or_else(|| sqlx::Error::RowNotFound)?;
        tx.commit().await?;
        Ok(Some(stored.request))
    }

    /// One request of the account, while it lives.
    pub async fn join_request(
        &self,
        family: &FamilyId,
        id: &JoinRequestId,
    ) -> DbResult<Option<JoinRequest>> {
        let row: Option<Row> = sqlx::query_as(&one_sql())
            .bind(family.as_str())
            .bind(id.as_str())
            .bind(self.now())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode(r).map(|s| s.request)).transpose()
    }

    /// The account's requests still waiting for, or in, an exchange.
    pub async fn open_join_requests(&self, family: &FamilyId) -> DbResult<Vec<JoinRequest>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM join_requests j LEFT JOIN sessions s ON s.id = j.session_id LEFT JOIN accounts ja ON ja.id = s.account_id WHERE j.account_id = $1 AND j.expires_at > $2 AND j.state IN ('waiting', 'offered', 'answered') ORDER BY j.created_at"
        );
        let rows: Vec<Row> = sqlx::query_as(&sql)
            .bind(family.as_str())
            .bind(self.now())
            .fetch_all(&self.pool)
            .await?;
        // Each computer's newest request only: a restarted app asks again.
        let mut newest: Vec<Stored> = Vec::new();
        for row in rows.into_iter().rev() {
            let stored = decode(row)?;
            if !newest.iter().any(|s| s.requester == stored.requester) {
                newest.push(stored);
            }
        }
        Ok(newest.into_iter().rev().map(|s| s.request).collect())
    }

    /// Takes one step of a request's exchange, if it is that step's turn
    /// and `session` may take it.
    pub async fn step_join_request(
        &self,
        family: &FamilyId,
        id: &JoinRequestId,
        session: &SessionId,
        step: Step<'_>,
    ) -> DbResult<StepOutcome> {
        let now = self.now();
        let mut tx = self.write_tx(LockScope::Account(family.as_str())).await?;
        let Some(stored) = one_in(&mut tx, family, id.as_str(), now).await? else {
            return Ok(StepOutcome::NotFound);
        };
        let me = session.as_str();
        let is_requester = stored.requester == me;
        let state = stored.request.state;
        let update = match step {
            Step::Offer(offer) => {
                if is_requester {
                    return Ok(StepOutcome::NotThisComputer(
                        "a computer cannot approve itself; approve it from a computer that holds the family's keys",
                    ));
                }
                if state != JoinState::Waiting {
                    return Ok(StepOutcome::Spent);
                }
                sqlx::query("UPDATE join_requests SET state = 'offered', offer = $1, offer_session_id = $2 WHERE id = $3")
                    .bind(serde_json::to_string(offer).map_err(|e| sqlx::Error::Encode(e.into()))?)
                    .bind(me)
                    .bind(id.as_str())
            }
            Step::Answer(answer) => {
                if !is_requester {
                    return Ok(StepOutcome::NotThisComputer(
                        "only the computer that asked to join types the code",
                    ));
                }
                if state != JoinState::Offered {
                    return Ok(StepOutcome::Spent);
                }
                sqlx::query("UPDATE join_requests SET state = 'answered', answer_message = $1, answer_confirmation = $2 WHERE id = $3")
                    .bind(&answer.message)
                    .bind(&answer.confirmation)
                    .bind(id.as_str())
            }
            Step::Approve(approval) => {
                if stored.offerer.as_deref() != Some(me) {
                    return Ok(StepOutcome::NotThisComputer(
                        "only the computer that showed the code approves",
                    ));
                }
                if state != JoinState::Answered {
                    return Ok(StepOutcome::Spent);
                }
                record(
                    &mut tx,
                    now,
                    family,
                    "family.computer_approved",
                    Some(me),
                    &format!(
                        "“{}” was approved to read the family's locations",
                        stored.request.name
                    ),
                )
                .await?;
                sqlx::query("UPDATE join_requests SET state = 'approved', approval_confirmation = $1, approval_sealed = $2 WHERE id = $3")
                    .bind(&approval.confirmation)
                    .bind(&approval.sealed)
                    .bind(id.as_str())
            }
            Step::End => {
                if state == JoinState::Approved {
                    return Ok(StepOutcome::Spent);
                }
                sqlx::query("DELETE FROM join_requests WHERE id = $1").bind(id.as_str())
            }
        };
        update.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(StepOutcome::Done)
    }
}

async fn one_in(tx: &mut Tx, family: &FamilyId, id: &str, now: i64) -> DbResult<Option<Stored>> {
    let row: Option<Row> = sqlx::query_as(&one_sql())
        .bind(family.as_str())
        .bind(id)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
    row.map(decode).transpose()
}

/// One live request of an account: `$1` account, `$2` id, `$3` now.
fn one_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM join_requests j LEFT JOIN sessions s ON s.id = j.session_id LEFT JOIN accounts ja ON ja.id = s.account_id WHERE j.account_id = $1 AND j.id = $2 AND j.expires_at > $3"
    )
}
