// Declares the app's own commands so each needs an explicit permission in
// `capabilities/` (nothing is allowed by default).
fn main() {
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "app_config",
            "restore",
            "sign_in",
            "cancel_sign_in",
            "sign_out",
            "me",
            "watches",
            "history",
            "pair",
            "code_from_picture",
            "rename_watch",
            "revoke_watch",
            "passkeys",
            "add_passkey",
            "rename_passkey",
            "remove_passkey",
            "sessions",
            "end_session",
            "end_other_sessions",
            "activity",
            "start_live",
            "settings",
            "save_settings",
            "restart",
            "check_update",
            "install_update",
            "offline_map_range",
            "family_keys",
            "save_recovery_key",
            "recovery_key_saved",
            "join_requests",
            "start_approval",
            "finish_approval",
            "cancel_approval",
            "enter_approval_code",
        ]),
    ))
    .expect("tauri build step");
}
