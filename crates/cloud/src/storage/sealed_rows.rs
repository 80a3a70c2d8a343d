//! Reading stored sealed reports back out of their rows (shared by every
//! query that returns them): the JSON the cloud stored as the watch signed it.

use waymark_protocol::watches::SealedLatest;

use super::DbResult;

/// Stored JSON read back into its wire type (it was checked when stored).
pub(super) fn decode<T: serde::de::DeserializeOwned>(json: &str) -> DbResult<T> {
    serde_json::from_str(json).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A latest batch and its setup, read back from their stored JSON.
pub(super) fn sealed_latest(batch: String, setup: String) -> DbResult<SealedLatest> {
    Ok(SealedLatest {
        batch: decode(&batch)?,
        setup: decode(&setup)?,
    })
}
