//! The app window and what it may load: only the bundled UI (no remote page
//! is ever shown in it), images from the configured tile server only, and
//! links opened in the system browser instead.

use tauri::utils::config::Csp;
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindow, WebviewWindowBuilder, Wry};
use tauri_plugin_opener::OpenerExt;
use waymark_app_core::{AppError, Browser, Settings};

/// The window's Content-Security-Policy: no remote scripts, no eval, no
/// inline script; images from the app, `data:` and the tile server, or with
/// an offline map from no server at all.
pub fn content_policy(settings: &Settings) -> Csp {
    let tiles = match settings.offline_map {
        Some(_) => String::new(),
        None => format!(" {}", settings.tile_source()),
    };
    Csp::Policy(format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; \
         img-src 'self' data:{tiles}; connect-src ipc: http://ipc.localhost; font-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'none'; frame-src 'none'"
    ))
}

/// Opens the main window. Closing it to the tray destroys it (its web
/// process goes, and with it most of the app's memory; see
/// `background::on_window_event`); the tray and a second launch open it again.
pub fn open_main<M: Manager<Wry>>(app: &M) -> tauri::Result<WebviewWindow> {
    WebviewWindowBuilder::new(app, "main", WebviewUrl::App("index.html".into()))
        .title("Waymark")
        .inner_size(1200.0, 780.0)
        .min_inner_size(720.0, 480.0)
        // Stay on the bundled app: any other address is refused here.
        .on_navigation(|url| {
            matches!(url.scheme(), "tauri")
                || url.host_str() == Some("tauri.localhost")
                || url.as_str() == "about:blank"
        })
        .build()
        .inspect(|window| {
            let _ = window.with_webview(draw_in_software);
        })
}

/// WebKitGTK composites the page on the GPU by default, which on a machine
/// without one (or under Mesa's software GL) costs the web process about
/// 100 MB for the map's layers; drawn in software the map pans just as well
/// and the open window needs about 30 % less memory (README, "The desktop
/// app"). `WAYMARK_GPU_DRAWING=1` keeps WebKit's default.
fn draw_in_software(webview: tauri::webview::PlatformWebview) {
    #[cfg(target_os = "linux")]
    {
        use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
        if std::env::var_os("WAYMARK_GPU_DRAWING").is_some_and(|v| v == "1") {
            return;
        }
        if let Some(settings) = webview.inner().settings() {
            settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = webview;
}

/// Brings the window to the front, opening it again when it was closed to
/// the tray (the tray's "Open Waymark", or a second launch of the app).
pub fn show_main(app: &AppHandle) {
    match app.get_webview_window("main") {
        Some(window) => {
            let _ = window.unminimize();
            let _ = window.show();
            let _ = window.set_focus();
        }
        None => {
            if let Err(e) = open_main(app) {
                tracing::error!(error = %e, "the window could not open again");
            }
        }
    }
}

/// Opens sign-in and passkey pages in the person's default browser.
pub struct SystemBrowser(pub AppHandle);

impl Browser for SystemBrowser {
    fn open(&self, url: &str) -> Result<(), AppError> {
        self.0
            .opener()
            .open_url(url, None::<&str>)
            .map_err(|e| AppError::Browser(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(offline: bool) -> String {
        let mut settings = Settings::for_local_cloud(
            "https://localhost:8443",
            std::path::Path::new("/nonexistent/ca.pem"),
        )
        .expect("settings");
        if offline {
            settings.offline_map = Some("/maps/city.pmtiles".into());
        }
        match content_policy(&settings) {
            Csp::Policy(p) => p,
            Csp::DirectiveMap(_) => unreachable!("a policy string"),
        }
    }

    #[test]
    fn images_come_from_the_tile_server_or_with_an_offline_map_from_none() {
        assert!(policy(false).contains("img-src 'self' data: https://tile.openstreetmap.org;"));
        assert!(policy(true).contains("img-src 'self' data:;"));
        assert!(!policy(true).contains("openstreetmap"));
    }
}
