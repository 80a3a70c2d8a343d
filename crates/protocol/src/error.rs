//! The one error shape every Waymark endpoint answers with.

use serde::{Deserialize, Serialize};

/// `{"error": "<code>", "message": "<for a person>"}`: `error` is stable and
/// machine-readable, `message` says what went wrong and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}
