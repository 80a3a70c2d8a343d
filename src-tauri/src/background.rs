//! How the app keeps running for the parent: closing the window leaves it in
//! the tray (unless Settings says otherwise), with a hint the first time, and
//! it can start at login, in the tray (opt-in, tauri-plugin-autostart).

use std::path::PathBuf;

use tauri::{AppHandle, Manager, RunEvent, Window, WindowEvent};
use tauri_plugin_autostart::ManagerExt;
use tauri_plugin_window_state::{AppHandleExt, StateFlags};

use crate::alerts;
use crate::state::AppState;

/// Passed by the login entry: start in the tray, without the window.
pub const IN_TRAY_ARG: &str = "--in-tray";

/// What the window-state plugin keeps: size, position, maximised; not
/// whether it was shown (the app decides that).
pub fn window_state_flags() -> StateFlags {
    StateFlags::all() - StateFlags::VISIBLE
}

pub fn started_in_tray() -> bool {
    std::env::args().any(|a| a == IN_TRAY_ARG)
}

/// Closing the window closes it (its web process ends); while
/// `close_to_tray` is on the app keeps running without it ([`keep_running`]),
/// and says so the first time.
pub fn on_window_event(window: &Window, event: &WindowEvent) {
    if let WindowEvent::CloseRequested { .. } = event {
        let app = window.app_handle();
        let state = app.state::<AppState>();
        if !state.settings.close_to_tray() {
            return;
        }
        let _ = app.save_window_state(window_state_flags());
        first_close_hint(app, &state.first_close_marker);
    }
}

/// Whether the app stays when its last window has closed: yes while
/// `close_to_tray` is on, unless the parent asked to quit (an exit code).
pub fn keep_running(app: &AppHandle, event: &RunEvent) -> bool {
    match event {
        RunEvent::ExitRequested { code: None, .. } => app
            .try_state::<AppState>()
            .is_some_and(|state| state.settings.close_to_tray()),
        _ => false,
    }
}

/// Says once, at the first close, that the app is still running and where.
fn first_close_hint(app: &AppHandle, marker: &PathBuf) {
    if marker.exists() {
        return;
    }
    alerts::notify(
        app,
        "Waymark is still running",
        "It keeps following your family from the tray and will tell you when something needs you. \
         Quit from the tray's menu; in Settings, closing the window can quit instead.",
    );
    if let Some(dir) = marker.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(marker, b"shown\n") {
        tracing::warn!(error = %e, "could not remember that the first-close hint was shown");
    }
}

/// Makes the login entry match the setting.
pub fn apply_start_at_login(app: &AppHandle, wanted: bool) {
    let launcher = app.autolaunch();
    let result = match (wanted, launcher.is_enabled().unwrap_or(false)) {
        (true, false) => launcher.enable(),
        (false, true) => launcher.disable(),
        _ => Ok(()),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not change starting at login");
    }
}

/// Saves the Settings screen and applies what can change at once: alerts,
/// closing to the tray (read at each close) and starting at login.
pub fn save_settings(
    app: &AppHandle,
    state: &AppState,
    edit: waymark_app_core::settings::Editable,
) -> Result<waymark_app_core::settings::Saved, waymark_app_core::AppError> {
    let saved = state.settings.save(edit)?;
    state.family.set_prefs(state.settings.alerts());
    apply_start_at_login(app, state.settings.start_at_login());
    Ok(saved)
}

/// Saves the family's zones; the alerts know the new names at once (an
/// arrival at a zone just drawn names it).
pub async fn save_zones(
    state: &AppState,
    zones: Vec<waymark_protocol::safe_zones::Zone>,
    time_zone: Option<String>,
) -> Result<waymark_app_core::zones::ZonesView, waymark_app_core::AppError> {
    let view = state.core.save_zones(zones, time_zone).await?;
    state.family.zones_changed(&view.zones);
    Ok(view)
}
