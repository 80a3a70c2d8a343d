//! An almost empty Tauri window (same Tauri, same WebKitGTK, one line of
//! HTML): the floor `scripts/bench-app` measures the app against, in the
//! same run (`--software-drawing`: drawn like the app). Not shipped.

use tauri::http::Response;
use tauri::{WebviewUrl, WebviewWindowBuilder};

const PAGE: &[u8] = b"<!doctype html><title>Empty</title><p id=ready>ready</p>";

fn main() {
    let result = tauri::Builder::default()
        // The page comes from the binary, like the app's own UI.
        .register_uri_scheme_protocol("empty", |_ctx, _request| {
            Response::builder()
                .header("content-type", "text/html")
                .body(PAGE.to_vec())
                .unwrap_or_default()
        })
        .setup(|app| {
            let url = "empty://localhost/".parse().map_err(|e| format!("{e}"))?;
            let window = WebviewWindowBuilder::new(app, "main", WebviewUrl::CustomProtocol(url))
                .title("Empty")
                .inner_size(1200.0, 780.0)
                .build()?;
            // The app draws in software (src/window.rs); bench-app also
            // measures the floor that way, like for like.
            if std::env::args().any(|a| a == "--software-drawing") {
                window.with_webview(|webview| {
                    #[cfg(target_os = "linux")]
                    {
                        use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
                        if let Some(settings) = webview.inner().settings() {
                            settings.set_hardware_acceleration_policy(
                                HardwareAccelerationPolicy::Never,
                            );
                        }
                    }
                    #[cfg(not(target_os = "linux"))]
                    let _ = webview;
                })?;
            }
            Ok(())
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("empty_window: {e}");
        std::process::exit(1);
    }
}
