//! The Tauri commands: each is a one-line delegation to the core. The UI
//! gets account and watch data and `{code, message}` errors, never a token.

use tauri::{AppHandle, Emitter, State};
use waymark_app_core::approvals::JoinRequestInfo;
use waymark_app_core::family::FamilyKeysView;
use waymark_app_core::offline_map::OfflineMap;
use waymark_app_core::settings::{AppConfig, Editable, Saved, SettingsView};
use waymark_app_core::updates::UpdateCheck;
use waymark_app_core::watches::{Trail, ZoneEntry};
use waymark_app_core::zones::ZonesView;
use waymark_app_core::{AppError, Start};
use waymark_protocol::safe_zones::Zone;

use crate::state::AppState;
use waymark_protocol::account::{ActivityEntry, Me, PasskeyInfo, SessionInfo};
use waymark_protocol::co_parents::{FamilyMembers, FamilyRole, Invitation, InvitationPreview};
use waymark_protocol::watches::WatchInfo;

type Result<T> = std::result::Result<T, AppError>;
type S<'a> = State<'a, AppState>;

#[tauri::command]
pub fn app_config(s: S<'_>) -> AppConfig {
    s.core.settings().app_config()
}

/// Bytes of the offline map archive (the one chosen in Settings), raw.
#[tauri::command]
pub fn offline_map_range(s: S<'_>, offset: u64, length: u64) -> Result<tauri::ipc::Response> {
    // The map chosen at start (a change needs a restart, like the content policy).
    let Some(path) = &s.core.settings().offline_map else {
        return Err(AppError::Settings(
            "No offline map is chosen in Settings.".into(),
        ));
    };
    OfflineMap::new(path)
        .read(offset, length)
        .map(tauri::ipc::Response::new)
}

#[tauri::command]
pub async fn restore(s: S<'_>) -> Result<Option<Me>> {
    s.core.restore().await
}

#[tauri::command]
pub async fn sign_in(s: S<'_>, start: Start) -> Result<Me> {
    s.core.sign_in(s.browser.as_ref(), start).await
}

#[tauri::command]
pub fn cancel_sign_in(s: S<'_>) {
    s.core.cancel_sign_in()
}

#[tauri::command]
pub async fn sign_out(s: S<'_>) -> Result<()> {
    stop_live(&s).await;
    s.core.sign_out().await
}

#[tauri::command]
pub fn settings(s: S<'_>) -> SettingsView {
    s.settings.view()
}

/// Saves the Settings screen; alerts, tray and login changes apply at once.
#[tauri::command]
pub fn save_settings(app: AppHandle, s: S<'_>, edit: Editable) -> Result<Saved> {
    crate::background::save_settings(&app, &s, edit)
}

/// Asks the update feed whether a newer Waymark exists.
#[tauri::command]
pub async fn check_update(app: AppHandle, s: S<'_>) -> Result<UpdateCheck> {
    crate::updates::check(&app, &s.settings.current(), &s.update).await
}

/// Installs the update the last check offered (signature checked) and restarts.
#[tauri::command]
pub async fn install_update(app: AppHandle, s: S<'_>) -> Result<()> {
    crate::updates::install(&app, &s.update).await
}

/// Restarts the app (after a change of cloud or map).
#[tauri::command]
pub fn restart(app: AppHandle) {
    app.restart()
}

#[tauri::command]
pub async fn me(s: S<'_>) -> Result<Me> {
    s.core.me().await
}

#[tauri::command]
pub async fn watches(s: S<'_>) -> Result<Vec<WatchInfo>> {
    s.core.watches().await
}

#[tauri::command]
pub async fn history(s: S<'_>, watch_id: String, from: i64, to: i64) -> Result<Trail> {
    s.core.history(&watch_id, from, to).await
}

#[tauri::command]
pub async fn pair(s: S<'_>, code: String) -> Result<WatchInfo> {
    s.core.pair(&code).await
}

#[tauri::command]
pub async fn code_from_picture(picture: Vec<u8>) -> Result<String> {
    waymark_app_core::pairing_picture::code_from_picture(&picture)
}

#[tauri::command]
pub async fn rename_watch(s: S<'_>, watch_id: String, name: String) -> Result<()> {
    s.core.rename_watch(&watch_id, &name).await
}

#[tauri::command]
pub async fn zones(s: S<'_>) -> Result<ZonesView> {
    s.core.zones().await
}

#[tauri::command]
pub async fn save_zones(
    s: S<'_>,
    zones: Vec<Zone>,
    time_zone: Option<String>,
) -> Result<ZonesView> {
    crate::background::save_zones(&s, zones, time_zone).await
}

#[tauri::command]
pub fn time_zones() -> Vec<String> {
    waymark_app_core::zones::time_zone_names()
}

#[tauri::command]
pub fn zone_events_away(s: S<'_>) -> Vec<ZoneEntry> {
    s.family.away()
}

#[tauri::command]
pub fn dismiss_zone_events_away(s: S<'_>) {
    s.family.dismiss_away()
}

#[tauri::command]
pub async fn revoke_watch(s: S<'_>, watch_id: String, keep_history: bool) -> Result<()> {
    s.core.revoke_watch(&watch_id, keep_history).await
}

#[tauri::command]
pub async fn passkeys(s: S<'_>) -> Result<Vec<PasskeyInfo>> {
    s.core.passkeys().await
}

#[tauri::command]
pub async fn add_passkey(s: S<'_>) -> Result<()> {
    s.core.add_passkey(s.browser.as_ref()).await
}

#[tauri::command]
pub async fn rename_passkey(s: S<'_>, id: String, name: String) -> Result<()> {
    s.core.rename_passkey(&id, &name).await
}

#[tauri::command]
pub async fn remove_passkey(s: S<'_>, id: String) -> Result<()> {
    s.core.remove_passkey(&id).await
}

#[tauri::command]
pub async fn sessions(s: S<'_>) -> Result<Vec<SessionInfo>> {
    s.core.sessions().await
}

#[tauri::command]
pub async fn end_session(s: S<'_>, id: String) -> Result<()> {
    s.core.end_session(&id).await
}

#[tauri::command]
pub async fn end_other_sessions(s: S<'_>) -> Result<u64> {
    s.core.end_other_sessions().await
}

#[tauri::command]
pub async fn activity(s: S<'_>) -> Result<Vec<ActivityEntry>> {
    s.core.activity().await
}

#[tauri::command]
pub async fn family_keys(s: S<'_>) -> Result<FamilyKeysView> {
    s.core.family_keys().await
}

/// Saves the recovery key to the Documents folder (or the home folder).
#[tauri::command]
pub async fn save_recovery_key(s: S<'_>) -> Result<String> {
    let dir = dirs::document_dir()
        .or_else(dirs::home_dir)
        .unwrap_or_default();
    s.core.save_recovery_key(&dir).await
}

#[tauri::command]
pub async fn restore_with_recovery_key(s: S<'_>, key: String) -> Result<FamilyKeysView> {
    s.core.restore_with_recovery_key(&key).await
}

#[tauri::command]
pub async fn recovery_key_saved(s: S<'_>) -> Result<()> {
    s.core.recovery_key_saved().await
}

#[tauri::command]
pub async fn join_requests(s: S<'_>) -> Result<Vec<JoinRequestInfo>> {
    s.core.join_requests().await
}

/// Starts approving a computer: the code to show.
#[tauri::command]
pub async fn start_approval(s: S<'_>, id: String) -> Result<String> {
    s.core.start_approval(&id).await
}

/// Waits for the code to be typed on the other computer, then approves it.
#[tauri::command]
pub async fn finish_approval(s: S<'_>, id: String) -> Result<()> {
    s.core.finish_approval(&id).await
}

#[tauri::command]
pub async fn cancel_approval(s: S<'_>, id: String) -> Result<()> {
    s.core.cancel_approval(&id).await
}

#[tauri::command]
pub async fn enter_approval_code(s: S<'_>, code: String) -> Result<FamilyKeysView> {
    s.core.enter_approval_code(&code).await
}

#[tauri::command]
pub async fn family_members(s: S<'_>) -> Result<FamilyMembers> {
    s.core.family_members().await
}

#[tauri::command]
pub async fn invite(s: S<'_>, role: FamilyRole) -> Result<Invitation> {
    s.core.invite(role).await
}

#[tauri::command]
pub async fn cancel_invitation(s: S<'_>, id: String) -> Result<()> {
    s.core.cancel_invitation(&id).await
}

#[tauri::command]
pub async fn set_member_role(s: S<'_>, account_id: String, role: FamilyRole) -> Result<()> {
    s.core.set_member_role(&account_id, role).await
}

#[tauri::command]
pub async fn remove_member(s: S<'_>, account_id: String) -> Result<FamilyKeysView> {
    s.core.remove_member(&account_id).await
}

#[tauri::command]
pub async fn leave_family(s: S<'_>) -> Result<FamilyKeysView> {
    s.core.leave_family().await
}

#[tauri::command]
pub async fn preview_invitation(s: S<'_>, code: String) -> Result<InvitationPreview> {
    s.core.preview_invitation(&code).await
}

#[tauri::command]
pub async fn accept_invitation(s: S<'_>, code: String) -> Result<FamilyKeysView> {
    s.core.accept_invitation(&code).await
}

/// The invitation link Waymark was opened with, once.
#[tauri::command]
pub fn take_invitation(s: S<'_>) -> Option<String> {
    s.core.take_invitation()
}

/// Follows the family (live stream and alerts), forwarding each live event
/// to the UI as `live`; it goes on with the window closed. Starting again
/// replaces the previous follower.
#[tauri::command]
pub async fn start_live(app: AppHandle, s: S<'_>) -> Result<()> {
    let core = s.core.clone();
    let family = s.family.clone();
    let follower = tokio::spawn(async move {
        family
            .follow(&core, move |event| drop(app.emit("live", event)))
            .await
    });
    if let Some(old) = s.live.lock().await.replace(follower) {
        old.abort();
    }
    Ok(())
}

async fn stop_live(s: &S<'_>) {
    if let Some(old) = s.live.lock().await.take() {
        old.abort();
    }
    s.family.signed_out();
}
