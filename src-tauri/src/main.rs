//! Waymark, the desktop app. The window shows the UI in `ui/`; everything it
//! does goes through the commands in `commands.rs`, each a one-line call into
//! `waymark_app_core::Core`, which is tested without a window.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod alerts;
mod background;
mod commands;
mod logs;
mod state;
mod tray;
mod updates;
mod window;

use std::sync::Arc;

use tauri::{Emitter, Manager, RunEvent};

use waymark_app_core::co_parents::invitation_in;
use waymark_app_core::family_watch::{FamilyWatch, system_clock};
use waymark_app_core::settings::SettingsStore;
use waymark_app_core::{Browser, CommandBrowser, Core, Settings};

fn main() {
    logs::init_tracing();
    let context = tauri::generate_context!();
    // Tauri's `app_config_dir` (the platform's config directory and the app's
    // identifier), found before the app starts because the settings decide
    // the window's content policy.
    let Some(config_dir) = dirs::config_dir().map(|d| d.join(&context.config().identifier)) else {
        eprintln!("waymark: this computer has no configuration folder (is HOME set?)");
        std::process::exit(2);
    };
    // Likewise `app_data_dir`, where the family's key file lives.
    let Some(data_dir) = dirs::data_dir().map(|d| d.join(&context.config().identifier)) else {
        eprintln!("waymark: this computer has no data folder (is HOME set?)");
        std::process::exit(2);
    };
    let settings = match Settings::load(&config_dir, &data_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("waymark: {e}");
            std::process::exit(2);
        }
    };
    let core = match Core::new(settings) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("waymark: {e}");
            std::process::exit(2);
        }
    };

    // Started by the desktop for an invitation link: the window takes it.
    if let Some(link) = invitation_in(&std::env::args().collect::<Vec<_>>()) {
        core.hold_invitation(link);
    }
    let mut context = context;
    let in_tray = background::started_in_tray();
    // Map images may come from the configured tile server and nowhere else.
    context.config_mut().app.security.csp = Some(window::content_policy(core.settings()));

    let result = tauri::Builder::default()
        // First, so a second launch hands over before anything else starts:
        // it shows the running window and exits.
        .plugin(tauri_plugin_single_instance::init(|app, args, _cwd| {
            window::show_main(app);
            // The desktop opened an invitation link with the running app.
            if let Some(link) = invitation_in(&args) {
                app.state::<state::AppState>().core.hold_invitation(link);
                let _ = app.emit("invitation", ());
            }
        }))
        .plugin(logs::plugin())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_updater::Builder::new().build())
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_state_flags(background::window_state_flags())
                .build(),
        )
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .args([background::IN_TRAY_ARG])
                .app_name("Waymark")
                .build(),
        )
        .on_window_event(background::on_window_event)
        .setup(move |app| {
            if app.path().app_config_dir().ok().as_ref() != Some(&config_dir) {
                tracing::warn!("the settings folder differs from Tauri's app_config_dir");
            }
            let browser: Box<dyn Browser> = match &core.settings().browser {
                Some(command) => Box::new(CommandBrowser(command.clone())),
                None => Box::new(window::SystemBrowser(app.handle().clone())),
            };
            app.manage(tray::build(app)?);
            let family = Arc::new(
                FamilyWatch::new(
                    core.settings().alerts.clone(),
                    Box::new(alerts::Desktop(app.handle().clone())),
                    system_clock(),
                )
                .with_away_marker(core.settings().data_dir.join("last-family-check")),
            );
            let store = SettingsStore::new(core.settings().clone());
            background::apply_start_at_login(app.handle(), store.start_at_login());
            app.manage(state::AppState::new(
                core.clone(),
                browser,
                family,
                store,
                config_dir.join("first-close-hint-shown"),
            ));
            // Started at login: the tray only, no window (and no web process).
            if !in_tray {
                window::open_main(app)?;
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_config,
            commands::restore,
            commands::sign_in,
            commands::cancel_sign_in,
            commands::sign_out,
            commands::me,
            commands::watches,
            commands::history,
            commands::zones,
            commands::save_zones,
            commands::time_zones,
            commands::zone_events_away,
            commands::dismiss_zone_events_away,
            commands::pair,
            commands::code_from_picture,
            commands::rename_watch,
            commands::revoke_watch,
            commands::passkeys,
            commands::add_passkey,
            commands::rename_passkey,
            commands::remove_passkey,
            commands::sessions,
            commands::end_session,
            commands::end_other_sessions,
            commands::activity,
            commands::start_live,
            commands::settings,
            commands::save_settings,
            commands::restart,
            commands::check_update,
            commands::install_update,
            commands::offline_map_range,
            commands::family_keys,
            commands::save_recovery_key,
            commands::recovery_key_saved,
            commands::restore_with_recovery_key,
            commands::join_requests,
            commands::start_approval,
            commands::finish_approval,
            commands::cancel_approval,
            commands::enter_approval_code,
            commands::family_members,
            commands::invite,
            commands::cancel_invitation,
            commands::set_member_role,
            commands::remove_member,
            commands::leave_family,
            commands::preview_invitation,
            commands::accept_invitation,
            commands::take_invitation,
        ])
        .build(context)
        .map(|app| {
            app.run(|app, event| {
                if let RunEvent::ExitRequested { api, .. } = &event
                    && background::keep_running(app, &event)
                {
                    api.prevent_exit();
                }
            })
        });
    if let Err(e) = result {
        eprintln!("waymark: the window could not start: {e}");
        std::process::exit(1);
    }
}
