//! Waymark, the desktop app. The window shows the UI in `ui/`; everything it
//! does goes through the commands in `commands.rs`, each a one-line call into
//! `waymark_app_core::Core`, which is tested without a window.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod window;

use std::sync::Arc;

use tauri::Manager;

use waymark_app_core::{Browser, CommandBrowser, Core, Settings};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "waymark=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let settings = match Settings::load() {
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

    let mut context = tauri::generate_context!();
    // Map images may come from the configured tile server and nowhere else.
    context.config_mut().app.security.csp = Some(window::content_policy(core.settings()));

    let result = tauri::Builder::default()
        // First, so a second launch hands over before anything else starts:
        // it shows the running window and exits.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            window::show_main(app);
        }))
        .plugin(tauri_plugin_opener::init())
        .setup(move |app| {
            let browser: Box<dyn Browser> = match &core.settings().browser {
                Some(command) => Box::new(CommandBrowser(command.clone())),
                None => Box::new(window::SystemBrowser(app.handle().clone())),
            };
            app.manage(commands::AppState::new(core.clone(), browser));
            window::open_main(app)?;
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
        ])
        .run(context);
    if let Err(e) = result {
        eprintln!("waymark: the window could not start: {e}");
        std::process::exit(1);
    }
}
