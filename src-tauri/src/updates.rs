//! Updates that cannot be forged. A check asks the update feed (HTTPS) for a
//! newer version; the parent sees what is new and clicks to install. The
//! download must carry a minisign signature, made by the release key for
//! exactly that version, that the public key built into this app
//! (`plugins.updater.pubkey`) accepts; anything else is refused before the
//! system's package tool sees it. Then the app restarts into the new version.

use std::time::Duration;

use tauri::AppHandle;
use tauri_plugin_updater::{Error, Update, UpdaterExt};
use tokio::sync::Mutex;
use waymark_app_core::AppError;
use waymark_app_core::settings::Settings;
use waymark_app_core::updates::{UpdateCheck, UpdateProblem, feed_tls};

/// The update the last check offered, kept for the parent's click.
#[derive(Default)]
pub struct Offered(Mutex<Option<Update>>);

pub async fn check(
    app: &AppHandle,
    settings: &Settings,
    offered: &Offered,
) -> Result<UpdateCheck, AppError> {
    let current = app.package_info().version.to_string();
    let tls = feed_tls(settings)?;
    let mut builder = app
        .updater_builder()
        .timeout(Duration::from_secs(60))
        .configure_client(move |client| client.use_preconfigured_tls(tls.clone()).https_only(true));
    if let Some(feed) = &settings.update_feed {
        builder = builder.endpoints(vec![feed.clone()]).map_err(refusal)?;
    }
    let updater = match builder.build() {
        Err(Error::EmptyEndpoints) => return Ok(UpdateCheck::NoFeed { current }),
        other => other.map_err(refusal)?,
    };
    let found = updater.check().await.map_err(refusal)?;
    let answer = match &found {
        None => UpdateCheck::UpToDate { current },
        Some(update) => UpdateCheck::Available {
            current,
            version: update.version.clone(),
            notes: update.body.clone().unwrap_or_default(),
            date: update.raw_json["pub_date"].as_str().map(str::to_owned),
        },
    };
    *offered.0.lock().await = found;
    Ok(answer)
}

/// Downloads, checks and installs the offered update, then restarts into it.
pub async fn install(app: &AppHandle, offered: &Offered) -> Result<(), AppError> {
    let Some(update) = offered.0.lock().await.take() else {
        return Err(AppError::UpdateUnreachable(
            "no update is waiting; check for updates first".into(),
        ));
    };
    tracing::info!(version = %update.version, "installing an update");
    update
        .download_and_install(|_, _| {}, || {})
        .await
        .map_err(refusal)?;
    tracing::info!(version = %update.version, "update installed; restarting");
    app.restart()
}

fn refusal(e: Error) -> AppError {
    let problem = match &e {
        Error::Minisign(_)
        | Error::Base64(_)
        | Error::SignatureUtf8(_)
        | Error::SignedVersionMismatch { .. }
        | Error::MissingSignedVersion => UpdateProblem::NotSigned,
        Error::InvalidUpdaterFormat
        | Error::PackageInstallFailed
        | Error::DebInstallFailed
        | Error::AuthenticationFailed
        | Error::TempDirNotFound
        | Error::Io(_) => UpdateProblem::InstallFailed,
        _ => UpdateProblem::Unreachable,
    };
    tracing::warn!(error = %e, ?problem, "an update was refused, or could not be checked or installed");
    problem.into_error(&short(&e))
}

/// The updater's error in one line, without the feed's full answer.
fn short(e: &Error) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or_default();
    line.chars().take(160).collect()
}
