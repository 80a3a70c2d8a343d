//! The tray icon: the family's state at a glance and the app's menu (Open
//! Waymark, pause alerts for an hour, Quit). Closing the window leaves the
//! app here, still following the family.

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{App, AppHandle, Manager, Wry};
use waymark_app_core::alerts::FamilyState;

use crate::state::AppState;
use crate::window;

pub struct Tray {
    status: MenuItem<Wry>,
    pause: MenuItem<Wry>,
    icon: TrayIcon<Wry>,
}

pub fn build(app: &App) -> tauri::Result<Tray> {
    let status = MenuItem::with_id(app, "status", "Signed out", false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Waymark", true, None::<&str>)?;
    let pause = MenuItem::with_id(app, "pause", "Pause alerts for 1 hour", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&status, &separator, &open, &pause, &quit])?;
    let mut builder = TrayIconBuilder::with_id("main")
        .tooltip("Waymark")
        .menu(&menu)
        .on_menu_event(move |app, event| match event.id().as_ref() {
            "open" => window::show_main(app),
            // Pauses, or resumes when paused; the label follows (see `show`).
            "pause" => toggle_pause(app),
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    let icon = builder.build(app)?;
    Ok(Tray {
        status,
        pause,
        icon,
    })
}

impl Tray {
    /// Shows the family's state in the menu's first line and next to the icon.
    pub fn show(&self, state: &FamilyState, paused: bool) {
        let mut summary = state.summary();
        if paused {
            summary.push_str(" · alerts paused");
        }
        let _ = self.status.set_text(&summary);
        let _ = self.pause.set_text(if paused {
            "Resume alerts"
        } else {
            "Pause alerts for 1 hour"
        });
        let _ = self.icon.set_tooltip(Some(format!("Waymark: {summary}")));
        let mark = match state {
            FamilyState::AllReporting => None,
            FamilyState::Quiet { .. } => Some("quiet"),
            FamilyState::Alert { .. } => Some("alert"),
            FamilyState::SignedOut | FamilyState::NoWatches => None,
        };
        let _ = self.icon.set_title(mark);
    }
}

/// The tray, once the app has one.
pub fn get(app: &AppHandle) -> Option<tauri::State<'_, Tray>> {
    app.try_state::<Tray>()
}

/// "Pause alerts for 1 hour", or "Resume alerts" while paused.
fn toggle_pause(app: &AppHandle) {
    let state = app.state::<AppState>();
    if state.family.paused() {
        state.family.resume();
    } else {
        state.family.pause_for_an_hour();
    }
}
