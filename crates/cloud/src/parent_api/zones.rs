//! Safe zones for the family's apps (issue 16): the family's sealed zones
//! and each watch's signed word on them, and saving a new version. The
//! cloud checks who may save, the version and the sizes; it cannot read,
//! make or change a zone (each set is signed by a family computer, and the
//! watches and apps check that signature themselves).

use axum::extract::State;
use axum::http::StatusCode;
use waymark_protocol::co_parents::FamilyAction;
use waymark_protocol::family_zones::{FamilyZones, ZonesUpload};
use waymark_protocol::zone_relay::FAMILY_COPY;

use crate::binding::allow;
use crate::error::ApiError;
use crate::extractors::{Caller, Json};
use crate::state::AppState;
use crate::storage::zones::Saved;

#[utoipa::path(get, path = "/api/v1/zones", tag = "zones",
    responses((status = 200, description = "The family's zones, sealed to its key, and for each of its watches the stored version and the watch's own signed word on the zones it holds", body = FamilyZones)))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<FamilyZones>, ApiError> {
    allow(&caller, FamilyAction::SeeWatches)?;
    let watches = app.store.bound_watches(&caller.family_id).await?;
    Ok(axum::Json(
        app.store.family_zones(&caller.family_id, &watches).await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/zones", tag = "zones",
    request_body = ZonesUpload,
    responses(
        (status = 204, description = "Saved: each watch is handed its copy at its next status poll"),
        (status = 409, description = "The family already has this version or a newer one (`zones_conflict`): read the zones again", body = waymark_protocol::error::ErrorBody),
    ))]
pub async fn save(
    State(app): State<AppState>,
    caller: Caller,
    Json(body): Json<ZonesUpload>,
) -> Result<StatusCode, ApiError> {
    allow(&caller, FamilyAction::EditZones)?;
    let version = body.family.version;
    let shaped = |s: &waymark_protocol::zone_relay::SealedZoneSet| {
        s.is_well_formed() && s.version == version
    };
    if body.family.watch_id != FAMILY_COPY || !shaped(&body.family) {
        return Err(ApiError::InvalidRequest(
            "`family` must be the family's copy (`watch_id` \"family\"), version 1 or more, base64url.".into(),
        ));
    }
    let bound = app.store.bound_watches(&caller.family_id).await?;
    let mut watches = Vec::with_capacity(body.watches.len());
    for sealed in &body.watches {
        if !shaped(sealed) {
            return Err(ApiError::InvalidRequest(
                "Every watch's copy must have the family copy's version and be base64url.".into(),
            ));
        }
        if watches.iter().any(
            |(_, s): &(_, &waymark_protocol::zone_relay::SealedZoneSet)| {
                s.watch_id == sealed.watch_id
            },
        ) {
            return Err(ApiError::InvalidRequest(
                "Each watch may have one copy.".into(),
            ));
        }
        // Rule 2: a watch of another family answers like one that does not exist.
        let watch = bound
            .iter()
            .find(|w| w.is_live() && w.id().as_str() == sealed.watch_id)
            .ok_or(ApiError::NotFound)?;
        watches.push((watch, sealed));
    }
    match app
        .store
        .save_zones(
            &caller.family_id,
            &body.family,
            &watches,
            caller.session_id.as_str(),
        )
        .await?
    {
        Saved::Saved => {
            tracing::info!(version, watches = watches.len(), "safe zones saved");
            Ok(StatusCode::NO_CONTENT)
        }
        Saved::Conflict => Err(ApiError::ZonesConflict),
    }
}
