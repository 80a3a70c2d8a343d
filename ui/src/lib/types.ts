// The shapes the app's Rust core sends (see src-tauri/core and crates/protocol).

export interface Fix {
  /** Unix ms when the watch took the fix. */
  t: number;
  lat: number;
  lon: number;
  /** Accuracy radius in metres. */
  acc: number;
  /** Battery percent. */
  bat: number;
}

export type WatchState = "reporting" | "quiet" | "revoked";

export interface WatchInfo {
  id: string;
  name: string;
  model: string;
  paired_at: number;
  battery: number | null;
  last_seen: number | null;
  latest: Fix | null;
  state: WatchState;
  /** The watch's key is in a TPM: it cannot be copied off the watch. */
  hardware_key: boolean;
}

export interface Trail {
  fixes: Fix[];
  truncated: boolean;
}

export interface Me {
  account_id: string;
  display_name: string;
  created_at: number;
  session_id: string;
}

export interface PasskeyInfo {
  id: string;
  name: string;
  created_at: number;
  last_used_at: number | null;
}

export interface SessionInfo {
  id: string;
  name: string;
  created_at: number;
  last_used_at: number;
  current: boolean;
}

export interface AppConfig {
  cloud: string;
  tiles: string;
  tile_attribution: string;
  /** The offline map's file name when one is drawn instead of online tiles. */
  offline_map: string | null;
}

/** Every failure from the core: a stable code and a sentence for a person. */
export interface AppError {
  code: string;
  message: string;
}

export type LiveEvent =
  | { kind: "connected" }
  | { kind: "fix"; watch_id: string; fix: Fix }
  | { kind: "lagged" }
  | { kind: "offline"; message: string }
  | { kind: "signed_out" };

export interface ActivityEntry {
  at: number;
  /** e.g. `account.created`, `passkey.renamed`, `session.ended`, `watch.paired`. */
  kind: string;
  actor_session_id: string | null;
  actor_session_name: string | null;
  detail: string;
}

/** Which alerts the parent wants (src-tauri/core/src/alerts.rs `AlertPrefs`). */
export interface AlertPrefs {
  quiet_minutes: number;
  quiet: boolean;
  battery: boolean;
  new_computer: boolean;
  watch_changes: boolean;
}

/** What the Settings screen edits: the settings file's values (`Editable`). */
export interface EditableSettings {
  cloud: string;
  /** Empty: the public certificate authorities. */
  ca: string;
  tiles: string;
  tile_attribution: string;
  /** A PMTiles archive drawn instead of online tiles; empty: online tiles. */
  offline_map: string;
  /** Where updates are checked; empty: the feed this build was made with. */
  update_feed: string;
  session_name: string;
  close_to_tray: boolean;
  start_at_login: boolean;
  alerts: AlertPrefs;
}

export interface SettingsView {
  values: EditableSettings;
  /** Where the settings are written. */
  file: string;
  /** `WAYMARK_*` variables that override the file on this computer. */
  from_environment: string[];
  cloud_in_use: string;
  tiles_in_use: string;
}

export interface Saved {
  restart_needed: boolean;
}

/** What a check for updates found (src-tauri/core/src/updates.rs `UpdateCheck`). */
export type UpdateCheck =
  | { status: "no_feed"; current: string }
  | { status: "up_to_date"; current: string }
  | { status: "available"; current: string; version: string; notes: string; date: string | null };
