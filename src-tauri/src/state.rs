//! What the running app holds, shared by the commands, the tray and the
//! window's close handling: the core, the browser sign-in opens, the live
//! follower, the family alerts, the settings and the offered update.

use std::sync::Arc;

use tokio::sync::Mutex;
use waymark_app_core::family_watch::FamilyWatch;
use waymark_app_core::settings::SettingsStore;
use waymark_app_core::{Browser, Core};

pub struct AppState {
    pub core: Arc<Core>,
    pub browser: Box<dyn Browser>,
    pub live: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub family: Arc<FamilyWatch>,
    pub settings: SettingsStore,
    /// Present once the first-close hint has been shown.
    pub first_close_marker: std::path::PathBuf,
    /// The update the last check offered.
    pub update: crate::updates::Offered,
}

impl AppState {
    pub fn new(
        core: Arc<Core>,
        browser: Box<dyn Browser>,
        family: Arc<FamilyWatch>,
        settings: SettingsStore,
        first_close_marker: std::path::PathBuf,
    ) -> Self {
        Self {
            core,
            browser,
            live: Mutex::new(None),
            family,
            settings,
            first_close_marker,
            update: Default::default(),
        }
    }
}
