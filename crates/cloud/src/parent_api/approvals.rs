//! Approving a new family computer (issue 13, design §5), as the cloud
//! relays it: a computer without the family's keys posts a join request; a
//! computer that holds them starts the code exchange; the new computer
//! answers once; the trusted computer confirms and sends the sealed bundle.
//! Each step is the turn of one computer, and every read and step is scoped
//! to the caller's account (another account's request answers like none).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use waymark_protocol::approval::{
    ApprovalAnswer, ApprovalOffer, JoinRequest, NewJoinRequest, SealedApproval,
};
use waymark_protocol::ids::JoinRequestId;

use crate::error::ApiError;
use crate::extractors::{Caller, Json};
use crate::state::AppState;
use crate::storage::approvals::{Step, StepOutcome};

type ApiResult<T> = Result<axum::Json<T>, ApiError>;

fn known(id: &str) -> Result<JoinRequestId, ApiError> {
    JoinRequestId::parse(id).ok_or(ApiError::NotFound)
}

#[utoipa::path(post, path = "/api/v1/family/join-requests", tag = "family",
    request_body = NewJoinRequest,
    responses((status = 201, description = "Asked: the family's computers see the request (it lives 15 minutes)", body = JoinRequest)))]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Json(body): Json<NewJoinRequest>,
) -> Result<(StatusCode, axum::Json<JoinRequest>), ApiError> {
    match app
        .store
        .create_join_request(&caller.family_id, &caller.session_id, &body)
        .await?
    {
        Some(request) => Ok((StatusCode::CREATED, axum::Json(request))),
        None => Err(ApiError::RateLimited),
    }
}

#[utoipa::path(get, path = "/api/v1/family/join-requests", tag = "family",
    responses((status = 200, description = "The account's requests waiting for, or in, an approval", body = Vec<JoinRequest>)))]
pub async fn list(State(app): State<AppState>, caller: Caller) -> ApiResult<Vec<JoinRequest>> {
    Ok(axum::Json(
        app.store.open_join_requests(&caller.family_id).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/family/join-requests/{id}", tag = "family",
    params(("id" = String, Path, description = "The request's id", pattern = "^[0-9a-f]{32}$")),
    responses((status = 200, description = "The request and the exchange's messages so far", body = JoinRequest)))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<JoinRequest> {
    let id = known(&id)?;
    app.store
        .join_request(&caller.family_id, &id)
        .await?
        .map(axum::Json)
        .ok_or(ApiError::NotFound)
}

async fn step(
    app: &AppState,
    caller: &Caller,
    id: &str,
    step: Step<'_>,
) -> Result<StatusCode, ApiError> {
    let id = known(id)?;
    match app
        .store
        .step_join_request(&caller.family_id, &id, &caller.session_id, step)
        .await?
    {
        StepOutcome::Done => Ok(StatusCode::NO_CONTENT),
        StepOutcome::NotFound => Err(ApiError::NotFound),
        StepOutcome::Spent => Err(ApiError::ApprovalSpent),
        StepOutcome::NotThisComputer(why) => {
            Err(ApiError::InvalidRequest(format!("Refused: {why}.")))
        }
    }
}

fn malformed() -> ApiError {
    ApiError::InvalidRequest("An exchange message is base64url of the right length.".into())
}

#[utoipa::path(post, path = "/api/v1/family/join-requests/{id}/offer", tag = "family",
    params(("id" = String, Path, description = "The request's id", pattern = "^[0-9a-f]{32}$")),
    request_body = ApprovalOffer,
    responses((status = 204, description = "Offered: the new computer can answer with the code shown here")))]
pub async fn offer(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ApprovalOffer>,
) -> Result<StatusCode, ApiError> {
    if !body.is_well_formed() {
        return Err(malformed());
    }
    step(&app, &caller, &id, Step::Offer(&body)).await
}

#[utoipa::path(post, path = "/api/v1/family/join-requests/{id}/answer", tag = "family",
    params(("id" = String, Path, description = "The request's id", pattern = "^[0-9a-f]{32}$")),
    request_body = ApprovalAnswer,
    responses((status = 204, description = "Answered; the request takes no other answer")))]
pub async fn answer(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ApprovalAnswer>,
) -> Result<StatusCode, ApiError> {
    if !body.is_well_formed() {
        return Err(malformed());
    }
    step(&app, &caller, &id, Step::Answer(&body)).await
}

#[utoipa::path(post, path = "/api/v1/family/join-requests/{id}/approval", tag = "family",
    params(("id" = String, Path, description = "The request's id", pattern = "^[0-9a-f]{32}$")),
    request_body = SealedApproval,
    responses((status = 204, description = "Approved: the new computer opens the bundle")))]
pub async fn approve(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<SealedApproval>,
) -> Result<StatusCode, ApiError> {
    if !body.is_well_formed() {
        return Err(malformed());
    }
    let done = step(&app, &caller, &id, Step::Approve(&body)).await?;
    tracing::info!("a family computer was approved");
    Ok(done)
}

#[utoipa::path(delete, path = "/api/v1/family/join-requests/{id}", tag = "family",
    params(("id" = String, Path, description = "The request's id", pattern = "^[0-9a-f]{32}$")),
    responses((status = 204, description = "Ended (a wrong code, or cancelled)")))]
pub async fn end(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    step(&app, &caller, &id, Step::End).await
}
