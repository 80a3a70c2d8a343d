//! Where the core's family alerts appear on the desktop: a notification
//! each (tauri-plugin-notification, the desktop's notification server over
//! D-Bus on Linux) and the tray's state line.

use tauri::AppHandle;
use tauri_plugin_notification::NotificationExt;
use waymark_app_core::alerts::{Alert, FamilyState};
use waymark_app_core::family_watch::Surface;

use crate::tray;

pub struct Desktop(pub AppHandle);

impl Surface for Desktop {
    fn alert(&self, alert: &Alert) {
        notify(&self.0, &alert.title(), &alert.body());
    }

    fn family_state(&self, state: &FamilyState, paused_until: Option<i64>) {
        if let Some(tray) = tray::get(&self.0) {
            tray.show(state, paused_until.is_some());
        }
    }
}

/// Shows one desktop notification. The text never holds a location.
pub fn notify(app: &AppHandle, title: &str, body: &str) {
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::warn!(error = %e, "a desktop notification could not be shown");
    }
}
