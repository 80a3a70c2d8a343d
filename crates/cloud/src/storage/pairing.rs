//! Pairing offers as the registry keeps them (issue 13, pairing v2): stored
//! by the watch under their code's public locator, answered once by a
//! family, and finished by the watch's signed word, which alone makes the
//! binding. Nothing here is derived from the code's secret.

use sqlx::Row;
use waymark_protocol::ids::{FamilyId, SessionId, WatchId};
use waymark_protocol::pairing::{
    AnswerForWatch, OfferState, PairingAnswer, PairingConfirmation, PairingOutcome, SignedOffer,
};

use super::devices::BoundWatch;
use super::{DbResult, LockScope, Store, record};

/// The device an offer speaks for, from its verified certificate.
pub struct OfferingDevice<'a> {
    pub id: &'a str,
    pub serial: &'a str,
    pub model: &'a str,
    pub certificate: &'a [u8],
}

pub enum OfferStored {
    Stored,
    Revoked,
    /// Another live offer has this locator.
    LocatorTaken,
}

/// An offer as one account may see it.
pub struct SeenOffer {
    pub signed: SignedOffer,
    pub state: OfferState,
    pub watch_confirmation: Option<String>,
    pub device_id: WatchId,
}

pub enum Looked {
    Found(SeenOffer),
    /// No offer, another family's, or its watch was revoked: alike.
    NoSuchCode,
    Expired,
}

pub enum Answering {
    Answered,
    NoSuchCode,
    Expired,
    Used,
    AlreadyBound,
    AlreadyYours,
}

pub enum Finished {
    /// Bound now; the certificate was verified when its offer was stored.
    Paired {
        watch: BoundWatch,
        certificate: Vec<u8>,
    },
    /// The watch said the code did not match; the answering account and
    /// address are charged one wrong code.
    WrongCode { account_id: String, source: String },
    /// No answer of this account to this watch waits for its word.
    NoSuchAnswer,
    /// The watch was bound meanwhile (it cannot be bound twice).
    AlreadyBound,
}

fn lock_key(locator: &str) -> String {
    format!("pairing-offer:{locator}")
}

fn decode(e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

impl Store {
    /// Registers the device if new and stores its offer, replacing any
    /// unanswered earlier offer of the same device.
    pub async fn store_offer(
        &self,
        device: OfferingDevice<'_>,
        signed: &SignedOffer,
    ) -> DbResult<OfferStored> {
        let now = self.now();
        let offer = &signed.offer;
        let mut tx = self.write_tx(LockScope::Device(device.id)).await?;
        sqlx::query("INSERT INTO devices (id, serial, model, certificate, registered_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT(id) DO NOTHING")
            .bind(device.id)
            .bind(device.serial)
            .bind(device.model)
            .bind(device.certificate)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO device_counters (device_id) VALUES ($1) ON CONFLICT(device_id) DO NOTHING",
        )
        .bind(device.id)
        .execute(&mut *tx)
        .await?;
        let revoked: (Option<i64>,) =
            sqlx::query_as("SELECT revoked_at FROM devices WHERE id = $1")
                .bind(device.id)
                .fetch_one(&mut *tx)
                .await?;
        if revoked.0.is_some() {
            return Ok(OfferStored::Revoked);
        }
        sqlx::query("DELETE FROM pairing_offers WHERE device_id = $1 AND answered_at IS NULL")
            .bind(device.id)
            .execute(&mut *tx)
            .await?;
        // A locator is free again once its offer expired or finished.
        sqlx::query(
            "DELETE FROM pairing_offers WHERE locator = $1 AND (expires_at <= $2 OR finished_at IS NOT NULL)",
        )
        .bind(&offer.locator)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO pairing_offers (locator, device_id, signed_offer, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT(locator) DO NOTHING",
        )
        .bind(&offer.locator)
        .bind(device.id)
        .bind(serde_json::to_string(signed).map_err(decode)?)
        .bind(offer.created_at)
        .bind(offer.expires_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(OfferStored::LocatorTaken);
        }
        tx.commit().await?;
        Ok(OfferStored::Stored)
    }

    /// The offer with `locator` as `family` may see it: an open one (the
    /// code's holder needs it to answer), or one this family answered.
    pub async fn offer_for(&self, locator: &str, family: &FamilyId) -> DbResult<Looked> {
        let row = sqlx::query(
            "SELECT o.device_id, o.signed_offer, o.expires_at, o.account_id, o.outcome, o.watch_confirmation, d.revoked_at
             FROM pairing_offers o JOIN devices d ON d.id = o.device_id WHERE o.locator = $1",
        )
        .bind(locator)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Looked::NoSuchCode);
        };
        if row.get::<Option<i64>, _>("revoked_at").is_some() {
            return Ok(Looked::NoSuchCode);
        }
        let answered_by: Option<String> = row.get("account_id");
        let state = match (
            answered_by.as_deref(),
            row.get::<Option<String>, _>("outcome"),
        ) {
            (None, _) if row.get::<i64, _>("expires_at") <= self.now() => {
                return Ok(Looked::Expired);
            }
            (None, _) => OfferState::Open,
            (Some(a), _) if a != family.as_str() => return Ok(Looked::NoSuchCode),
            (Some(_), None) => OfferState::Answered,
            (Some(_), Some(o)) if o == "paired" => OfferState::Paired,
            (Some(_), Some(_)) => OfferState::WrongCode,
        };
        Ok(Looked::Found(SeenOffer {
            signed: serde_json::from_str(&row.get::<String, _>("signed_offer")).map_err(decode)?,
            state,
            watch_confirmation: row.get("watch_confirmation"),
            device_id: WatchId::try_from(row.get::<String, _>("device_id")).map_err(decode)?,
        }))
    }

    /// Spends the open offer with `locator` on `answer`, to be relayed to
    /// its watch. One answer per offer, right or wrong.
    pub async fn answer_offer(
        &self,
        locator: &str,
        family: &FamilyId,
        session_id: &SessionId,
        source: &str,
        answer: &PairingAnswer,
    ) -> DbResult<Answering> {
        let now = self.now();
        let mut tx = self.write_tx(LockScope::Secret(&lock_key(locator))).await?;
        let row = sqlx::query(
            "SELECT o.device_id, o.expires_at, o.account_id, d.revoked_at FROM pairing_offers o
             JOIN devices d ON d.id = o.device_id WHERE o.locator = $1",
        )
        .bind(locator)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Answering::NoSuchCode);
        };
        if row.get::<Option<i64>, _>("revoked_at").is_some() {
            return Ok(Answering::NoSuchCode);
        }
        // Another family's answered offer is not this family's to know of.
        match row.get::<Option<String>, _>("account_id") {
            Some(a) if a == family.as_str() => return Ok(Answering::Used),
            Some(_) => return Ok(Answering::NoSuchCode),
            None => {}
        }
        if row.get::<i64, _>("expires_at") <= now {
            return Ok(Answering::Expired);
        }
        let device_id: String = row.get("device_id");
        let bound: Option<(String,)> =
            sqlx::query_as("SELECT account_id FROM bindings WHERE device_id = $1")
                .bind(&device_id)
                .fetch_optional(&mut *tx)
                .await?;
        match bound {
            Some((owner,)) if owner == family.as_str() => return Ok(Answering::AlreadyYours),
            Some(_) => return Ok(Answering::AlreadyBound),
            None => {}
        }
        let spent = sqlx::query(
            "UPDATE pairing_offers SET account_id = $1, session_id = $2, source = $3, answer = $4, answered_at = $5
             WHERE locator = $6 AND answered_at IS NULL",
        )
        .bind(family.as_str())
        .bind(session_id.as_str())
        .bind(source)
        .bind(serde_json::to_string(answer).map_err(decode)?)
        .bind(now)
        .bind(locator)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent == 0 {
            return Ok(Answering::Used);
        }
        tx.commit().await?;
        Ok(Answering::Answered)
    }

    /// The answer waiting for this watch's word, if any.
    pub async fn answer_for_watch(&self, device_id: &str) -> DbResult<Option<AnswerForWatch>> {
        let row = sqlx::query(
            "SELECT locator, account_id, answer FROM pairing_offers
             WHERE device_id = $1 AND answered_at IS NOT NULL AND finished_at IS NULL
             ORDER BY answered_at DESC LIMIT 1",
        )
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(AnswerForWatch {
                locator: r.get("locator"),
                account_id: r.get("account_id"),
                answer: serde_json::from_str(&r.get::<String, _>("answer")).map_err(decode)?,
            })
        })
        .transpose()
    }

    /// Finishes the answered offer the watch's (verified) word is about:
    /// binds the watch to the answering account if the code matched.
    pub async fn finish_pairing(
        &self,
        device_id: &WatchId,
        word: &PairingConfirmation,
    ) -> DbResult<Finished> {
        let now = self.now();
        let mut tx = self
            .write_tx(LockScope::Secret(&lock_key(&word.locator)))
            .await?;
        let row = sqlx::query(
            "SELECT o.account_id, o.session_id, o.source, d.model, d.certificate FROM pairing_offers o
             JOIN devices d ON d.id = o.device_id
             WHERE o.locator = $1 AND o.device_id = $2 AND o.answered_at IS NOT NULL AND o.finished_at IS NULL",
        )
        .bind(&word.locator)
        .bind(device_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Finished::NoSuchAnswer);
        };
        let answered_by: String = row.get("account_id");
        if answered_by != word.account_id {
            return Ok(Finished::NoSuchAnswer);
        }
        let finish = |outcome: &'static str, confirmation: Option<&str>| {
            sqlx::query(
                "UPDATE pairing_offers SET outcome = $1, watch_confirmation = $2, finished_at = $3 WHERE locator = $4",
            )
            .bind(outcome)
            .bind(confirmation.map(str::to_owned))
            .bind(now)
            .bind(word.locator.clone())
        };
        if word.outcome == PairingOutcome::WrongCode {
            finish("wrong_code", None).execute(&mut *tx).await?;
            tx.commit().await?;
            return Ok(Finished::WrongCode {
                account_id: answered_by,
                source: row.get::<Option<String>, _>("source").unwrap_or_default(),
            });
        }
        let bound: Option<(String,)> =
            sqlx::query_as("SELECT account_id FROM bindings WHERE device_id = $1")
                .bind(device_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if bound.is_some() {
            return Ok(Finished::AlreadyBound);
        }
        // The answer names the family (its founding account's id), so the
        // watch is bound to the family whichever owner paired it.
        let family = FamilyId::try_from(answered_by).map_err(decode)?;
        let model: String = row.get("model");
        let name = format!("{model} {}", &device_id[..4].to_uppercase());
        sqlx::query(
            "INSERT INTO bindings (device_id, account_id, name, bound_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(device_id.as_str())
        .bind(family.as_str())
        .bind(&name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        finish("paired", Some(&word.confirmation))
            .execute(&mut *tx)
            .await?;
        let actor: Option<String> = row.get("session_id");
        record(
            &mut tx,
            now,
            &family,
            "watch.paired",
            actor.as_deref(),
            &format!("Paired “{name}”"),
        )
        .await?;
        let certificate: Vec<u8> = row.get("certificate");
        tx.commit().await?;
        Ok(Finished::Paired {
            watch: BoundWatch {
                device_id: device_id.clone(),
                family_id: family,
                name,
                model,
                bound_at: now,
                revoked_at: None,
            },
            certificate,
        })
    }
}
