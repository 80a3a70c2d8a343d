// The UI's only way to do anything: Tauri commands into the Rust core. The
// core holds the tokens; the UI never sees one.

import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type {
  ActivityEntry,
  AppConfig,
  AppError,
  EditableSettings,
  FamilyKeysView,
  FamilyMembers,
  FamilyRole,
  Invitation,
  InvitationPreview,
  JoinRequestInfo,
  LiveEvent,
  Me,
  PasskeyInfo,
  Saved,
  SessionInfo,
  SettingsView,
  Trail,
  UpdateCheck,
  WatchInfo,
  Zone,
  ZoneEntry,
  ZonesView,
} from "./types";

/** Turns whatever a command threw into an AppError with a sentence for a person. */
export function asAppError(e: unknown): AppError {
  if (typeof e === "object" && e !== null && "code" in e && "message" in e) {
    const { code, message } = e as { code: unknown; message: unknown };
    if (typeof code === "string" && typeof message === "string") return { code, message };
  }
  return { code: "unknown", message: "Something went wrong in the app. Try again; if it keeps happening, restart Waymark." };
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    throw asAppError(e);
  }
}

export const api = {
  config: () => call<AppConfig>("app_config"),
  restore: () => call<Me | null>("restore"),
  signIn: (start: "sign_in" | "create_account") => call<Me>("sign_in", { start }),
  cancelSignIn: () => call<null>("cancel_sign_in"),
  signOut: () => call<null>("sign_out"),
  me: () => call<Me>("me"),
  watches: () => call<WatchInfo[]>("watches"),
  history: (watchId: string, from: number, to: number) => call<Trail>("history", { watchId, from, to }),
  zones: () => call<ZonesView>("zones"),
  /** `timeZone`: an IANA name to read the schedules in; `null` keeps the family's. */
  saveZones: (zones: Zone[], timeZone: string | null = null) => call<ZonesView>("save_zones", { zones, timeZone }),
  timeZones: () => call<string[]>("time_zones"),
  zoneEventsAway: () => call<ZoneEntry[]>("zone_events_away"),
  dismissZoneEventsAway: () => call<null>("dismiss_zone_events_away"),
  pair: (code: string) => call<WatchInfo>("pair", { code }),
  codeFromPicture: (picture: number[]) => call<string>("code_from_picture", { picture }),
  renameWatch: (watchId: string, name: string) => call<null>("rename_watch", { watchId, name }),
  revokeWatch: (watchId: string, keepHistory: boolean) => call<null>("revoke_watch", { watchId, keepHistory }),
  passkeys: () => call<PasskeyInfo[]>("passkeys"),
  addPasskey: () => call<null>("add_passkey"),
  renamePasskey: (id: string, name: string) => call<null>("rename_passkey", { id, name }),
  removePasskey: (id: string) => call<null>("remove_passkey", { id }),
  sessions: () => call<SessionInfo[]>("sessions"),
  endSession: (id: string) => call<null>("end_session", { id }),
  endOtherSessions: () => call<number>("end_other_sessions"),
  activity: () => call<ActivityEntry[]>("activity"),
  familyKeys: () => call<FamilyKeysView>("family_keys"),
  saveRecoveryKey: () => call<string>("save_recovery_key"),
  recoveryKeySaved: () => call<null>("recovery_key_saved"),
  restoreWithRecoveryKey: (key: string) => call<FamilyKeysView>("restore_with_recovery_key", { key }),
  joinRequests: () => call<JoinRequestInfo[]>("join_requests"),
  startApproval: (id: string) => call<string>("start_approval", { id }),
  finishApproval: (id: string) => call<null>("finish_approval", { id }),
  cancelApproval: (id: string) => call<null>("cancel_approval", { id }),
  enterApprovalCode: (code: string) => call<FamilyKeysView>("enter_approval_code", { code }),
  familyMembers: () => call<FamilyMembers>("family_members"),
  invite: (role: FamilyRole) => call<Invitation>("invite", { role }),
  cancelInvitation: (id: string) => call<null>("cancel_invitation", { id }),
  setMemberRole: (accountId: string, role: FamilyRole) => call<null>("set_member_role", { accountId, role }),
  removeMember: (accountId: string) => call<FamilyKeysView>("remove_member", { accountId }),
  leaveFamily: () => call<FamilyKeysView>("leave_family"),
  previewInvitation: (code: string) => call<InvitationPreview>("preview_invitation", { code }),
  acceptInvitation: (code: string) => call<FamilyKeysView>("accept_invitation", { code }),
  takeInvitation: () => call<string | null>("take_invitation"),
  startLive: () => call<null>("start_live"),
  settings: () => call<SettingsView>("settings"),
  saveSettings: (edit: EditableSettings) => call<Saved>("save_settings", { edit }),
  restart: () => call<null>("restart"),
  checkUpdate: () => call<UpdateCheck>("check_update"),
  installUpdate: () => call<null>("install_update"),
  offlineMapRange: (offset: number, length: number) => call<ArrayBuffer>("offline_map_range", { offset, length }),
};

/** The desktop opened a `waymark://invite/…` link with the running app:
 * the link itself is then taken with `api.takeInvitation()`. */
export function onInvitation(handler: () => void): Promise<UnlistenFn> {
  return listen("invitation", () => handler());
}

export function onLive(handler: (e: LiveEvent) => void): Promise<UnlistenFn> {
  return listen<LiveEvent>("live", (event) => handler(event.payload));
}
