// The shapes the app's Rust core sends the window. They are generated from
// the Rust types into ipc.ts (src-tauri/core/tests/ipc_types.rs, ts-rs) and
// only re-exported here, so the two sides cannot drift apart.

export type {
  ActivityEntry,
  AlertPrefs,
  AppConfig,
  AppError,
  EditableSettings,
  FamilyKeysView,
  FamilyMember,
  FamilyMembers,
  FamilyRole,
  Fix,
  Invitation,
  InvitationInfo,
  InvitationPreview,
  JoinRequestInfo,
  LiveEvent,
  LiveFix,
  Me,
  PasskeyInfo,
  Saved,
  SessionInfo,
  SettingsView,
  Trail,
  UpdateCheck,
  WatchInfo,
  WatchState,
} from "./ipc";
