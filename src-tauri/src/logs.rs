//! The app's log: its `tracing` events go through tauri-plugin-log to stderr
//! and to a file in the platform's log directory, rotated at 1 MB with five
//! kept. Only the app's own messages are logged, and the core never logs a
//! token or a location.

use tauri::Runtime;
use tauri::plugin::TauriPlugin;
use tauri_plugin_log::{RotationStrategy, Target, TargetKind};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{EnvFilter, Layer};

pub const FILE_NAME: &str = "waymark";

pub fn plugin<R: Runtime>() -> TauriPlugin<R> {
    tauri_plugin_log::Builder::new()
        .clear_targets()
        .targets([
            Target::new(TargetKind::Stderr),
            Target::new(TargetKind::LogDir {
                file_name: Some(FILE_NAME.into()),
            }),
        ])
        .level(log::LevelFilter::Info)
        .max_file_size(1_000_000)
        .rotation_strategy(RotationStrategy::KeepSome(5))
        .build()
}

/// Sends `tracing` events (filtered by `RUST_LOG`, default: the app's info
/// and everyone's warnings) to the `log` logger the plugin installs.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "waymark=info,warn".into());
    // Not `.init()`: that would also make `log` records go to tracing, and
    // the plugin could not install its logger.
    let subscriber = tracing_subscriber::registry().with(ToLog.with_filter(filter));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

struct ToLog;

impl<S: tracing::Subscriber> Layer<S> for ToLog {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            tracing::Level::ERROR => log::Level::Error,
            tracing::Level::WARN => log::Level::Warn,
            tracing::Level::INFO => log::Level::Info,
            tracing::Level::DEBUG => log::Level::Debug,
            tracing::Level::TRACE => log::Level::Trace,
        };
        let mut line = Line::default();
        event.record(&mut line);
        log::logger().log(
            &log::Record::builder()
                .level(level)
                .target(meta.target())
                .args(format_args!("{}{}", line.message, line.fields))
                .build(),
        );
    }
}

#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}
