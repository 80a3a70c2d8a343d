//! Limits on guessing a secret a person types (a watch's pairing code, an
//! invitation code): each attempt is counted against every limit it falls
//! under (the family or account, the source address) before the secret is
//! looked at, so concurrent guesses cannot pass a limit, and given back
//! when it was not a wrong guess.

use crate::error::ApiError;
use crate::storage::Store;

/// One attempt, counted until [`Attempt::refund`] gives it back.
pub struct Attempt<'a> {
    store: &'a Store,
    keys: Vec<String>,
}

impl<'a> Attempt<'a> {
    /// Counts one attempt against each `(counter, max)` in windows of
    /// `window_ms`; `429 too_many_attempts` (with nothing left counted by
    /// this attempt) as soon as one is over.
    pub async fn spend(
        store: &'a Store,
        limits: impl IntoIterator<Item = (String, i64)>,
        window_ms: i64,
    ) -> Result<Self, ApiError> {
        let mut spent = Self {
            store,
            keys: Vec::new(),
        };
        for (key, max) in limits {
            if !store.spend_attempt(&key, window_ms, max).await? {
                spent.refund().await?;
                return Err(ApiError::TooManyAttempts);
            }
            spent.keys.push(key);
        }
        Ok(spent)
    }

    /// The attempt was not a wrong guess: it does not count.
    pub async fn refund(self) -> Result<(), ApiError> {
        for key in &self.keys {
            self.store.refund_attempt(key).await?;
        }
        Ok(())
    }
}
