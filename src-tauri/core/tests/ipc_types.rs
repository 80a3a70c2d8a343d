//! The TypeScript side of the app's IPC contract is generated from these Rust
//! types (ts-rs), never retyped: this test renders `ui/src/lib/ipc.ts` and
//! fails when the committed file differs. After changing a type, run
//! `WAYMARK_WRITE_IPC_TYPES=1 cargo test -p waymark-app-core --test ipc_types`.

use std::path::Path;

use ts_rs::TS;
use waymark_app_core::alerts::AlertPrefs;
use waymark_app_core::approvals::JoinRequestInfo;
use waymark_app_core::error::AppErrorShape;
use waymark_app_core::family::FamilyKeysView;
use waymark_app_core::live::LiveEvent;
use waymark_app_core::settings::{AppConfig, Editable, Saved, SettingsView};
use waymark_app_core::updates::UpdateCheck;
use waymark_app_core::watches::{Trail, ZoneEntry};
use waymark_app_core::zones::{WatchZones, ZonesView};
use waymark_protocol::account::{ActivityEntry, Me, PasskeyInfo, SessionInfo};
use waymark_protocol::co_parents::{
    FamilyMember, FamilyMembers, FamilyRole, Invitation, InvitationInfo, InvitationPreview,
};
use waymark_protocol::report::Fix;
use waymark_protocol::safe_zones::{
    Days, Point, Schedule, Shape, Zone, ZoneEvent, ZoneEventKind, ZoneId,
};
use waymark_protocol::watches::{LiveFix, WatchInfo, WatchState};

/// One declaration, exported, with its doc comment.
fn declare<T: TS>() -> String {
    let docs = T::docs().unwrap_or_default();
    format!("{docs}export {}\n", T::decl())
}

fn render() -> String {
    let declarations = [
        declare::<Fix>(),
        declare::<WatchState>(),
        declare::<WatchInfo>(),
        declare::<LiveFix>(),
        declare::<ZoneId>(),
        declare::<Point>(),
        declare::<Shape>(),
        declare::<Days>(),
        declare::<Schedule>(),
        declare::<Zone>(),
        declare::<ZoneEventKind>(),
        declare::<ZoneEvent>(),
        declare::<ZoneEntry>(),
        declare::<Trail>(),
        declare::<WatchZones>(),
        declare::<ZonesView>(),
        declare::<Me>(),
        declare::<PasskeyInfo>(),
        declare::<SessionInfo>(),
        declare::<ActivityEntry>(),
        declare::<AppConfig>(),
        declare::<AppErrorShape>(),
        declare::<LiveEvent>(),
        declare::<AlertPrefs>(),
        declare::<Editable>(),
        declare::<SettingsView>(),
        declare::<Saved>(),
        declare::<UpdateCheck>(),
        declare::<FamilyKeysView>(),
        declare::<JoinRequestInfo>(),
        declare::<FamilyRole>(),
        declare::<FamilyMember>(),
        declare::<InvitationInfo>(),
        declare::<FamilyMembers>(),
        declare::<Invitation>(),
        declare::<InvitationPreview>(),
    ];
    format!(
        "// Generated from the Rust types by src-tauri/core/tests/ipc_types.rs (ts-rs). Do not edit:\n\
         // change the Rust type, then run WAYMARK_WRITE_IPC_TYPES=1 cargo test -p waymark-app-core --test ipc_types\n\n{}",
        declarations.join("\n")
    )
}

#[test]
fn the_window_s_typescript_types_are_generated_from_the_rust_ones() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/lib/ipc.ts");
    let fresh = render();
    if std::env::var_os("WAYMARK_WRITE_IPC_TYPES").is_some() {
        std::fs::write(&path, &fresh).expect("write ui/src/lib/ipc.ts");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "ui/src/lib/ipc.ts is not what the Rust types say; regenerate it with \
         WAYMARK_WRITE_IPC_TYPES=1 cargo test -p waymark-app-core --test ipc_types"
    );
}
