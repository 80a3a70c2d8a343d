// Generated from the Rust types by src-tauri/core/tests/ipc_types.rs (ts-rs). Do not edit:
// change the Rust type, then run WAYMARK_WRITE_IPC_TYPES=1 cargo test -p waymark-app-core --test ipc_types

/**
 * One position fix.
 */
export type Fix = { 
/**
 * When, in ms since the Unix epoch.
 */
t: number, lat: number, lon: number, 
/**
 * Accuracy radius, metres.
 */
acc: number, 
/**
 * Battery, percent.
 */
bat: number, };

/**
 * Reporting: a fix in the last 5 minutes. Quiet: older or none. Revoked:
 * the parent revoked it and kept its history.
 */
export type WatchState = "reporting" | "quiet" | "revoked";

/**
 * A watch as the family's app shows it, after opening its latest report.
 */
export type WatchInfo = { id: string, name: string, model: string, paired_at: number, battery: number | null, last_seen: number | null, latest: Fix | null, state: WatchState, 
/**
 * The watch's key is in a TPM (its factory saw the TPM's evidence), so it
 * cannot be copied off the watch.
 */
hardware_key: boolean, 
/**
 * Why the latest report is not shown, when the app refused it (altered,
 * unreadable, an untrusted certificate): for the parent, in words.
 */
report_problem: string | null, 
/**
 * The family key epoch the watch sealed its latest report to (the
 * watch signed it), when that report was opened here.
 */
key_epoch: number | null, 
/**
 * That epoch is older than the family's current one: the watch has
 * not switched to the new key yet (it does at its next contact).
 */
behind_key: boolean, };

/**
 * A fix the app opened from a live batch, as its window gets it.
 */
export type LiveFix = { watch_id: string, fix: Fix, };

/**
 * A zone's id: 16 random bytes the app chooses, written as base64url. Fixed
 * length, so a zone event is a record of the same size as a fix in a
 * sealed batch (`location_sealing.rs`).
 */
export type ZoneId = string;

export type Point = { lat: number, lon: number, };

export type Shape = { "kind": "circle", centre: Point, radius_m: number, } | { "kind": "polygon", points: Array<Point>, };

/**
 * Days of the week as bits, Monday = bit 0.
 */
export type Days = number;

/**
 * When a zone applies.
 */
export type Schedule = { "kind": "always" } | { "kind": "weekly", days: Days, from_min: number, until_min: number, arrive_by_min: number | null, };

export type Zone = { 
/**
 * The family's own id for the zone (random; chosen by the app).
 */
id: ZoneId, name: string, shape: Shape, 
/**
 * The watches it applies to.
 */
watches: Array<string>, schedule: Schedule, };

export type ZoneEventKind = "arrived" | "left" | "not_arrived_by";

export type ZoneEvent = { zone_id: ZoneId, kind: ZoneEventKind, 
/**
 * The fix time (ms) that decided it, or for `NotArrivedBy` the time it
 * was noticed.
 */
t: number, };

/**
 * A safe-zone event as the app shows it: in the history trail, and in
 * "While you were away".
 */
export type ZoneEntry = { watch_id: string, 
/**
 * The watch's name.
 */
watch: string, zone_id: ZoneId, 
/**
 * The zone's name ("a safe zone" if it was deleted since).
 */
zone: string, kind: ZoneEventKind, 
/**
 * The watch's time of the event, Unix ms.
 */
t: number, };

export type Trail = { 
/**
 * Oldest first; only what verified and opened.
 */
fixes: Array<Fix>, 
/**
 * True when the range held more than `MAX_TRAIL_FIXES`.
 */
truncated: boolean, 
/**
 * What the app refused or found missing, for the parent, in words.
 */
notices: Array<string>, 
/**
 * The watch's safe-zone events in the range, oldest first (issue 16).
 */
events: Array<ZoneEntry>, };

/**
 * One watch's zones, as the watch itself said.
 */
export type WatchZones = { watch_id: string, name: string, 
/**
 * The version the watch checks its fixes against (0: none yet).
 */
in_force: number, 
/**
 * When the watch said so (its signed poll), Unix ms.
 */
said_at: number | null, 
/**
 * The watch refused the newest version: why, in words.
 */
refused: string | null, 
/**
 * The watch has told its zone key: zones can be sealed to it.
 */
ready: boolean, };

/**
 * The family's zones as this computer shows them.
 */
export type ZonesView = { 
/**
 * The version shown (0: the family has saved none yet).
 */
version: number, zones: Array<Zone>, 
/**
 * The IANA time zone the schedules are read in (with daylight saving):
 * the family's, sealed in the set, or this computer's before a first save.
 */
time_zone: string, 
/**
 * Why the family's zones are not shown (this computer waits for
 * approval, or the cloud's copy did not check), in words.
 */
problem: string | null, 
/**
 * Whether this computer can save zones (it holds the family's keys).
 */
can_edit: boolean, watches: Array<WatchZones>, };

export type Me = { account_id: string, display_name: string, created_at: number, 
/**
 * The signed-in computer this token belongs to.
 */
session_id: string, 
/**
 * The family this account belongs to (its own unless it joined another).
 */
family_id: string, 
/**
 * What this account may do in its family.
 */
role: FamilyRole, };

export type PasskeyInfo = { id: string, name: string, created_at: number, last_used_at: number | null, };

export type SessionInfo = { id: string, 
/**
 * The name the app gave this computer (its host name by default).
 */
name: string, created_at: number, last_used_at: number, 
/**
 * True for the session that made this request.
 */
current: boolean, };

/**
 * One entry of the parent's activity log.
 */
export type ActivityEntry = { at: number, 
/**
 * What happened, e.g. `account.created`, `passkey.renamed`, `session.ended`.
 */
kind: string, 
/**
 * The signed-in computer that did it, when one did.
 */
actor_session_id: string | null, actor_session_name: string | null, 
/**
 * The parent (account display name) whose computer did it, for the
 * family's events, which every member sees.
 */
actor_member_name: string | null, 
/**
 * A short description for a person (never a token or a location).
 */
detail: string, };

/**
 * What the window needs to draw the map (at start; changes need a restart).
 */
export type AppConfig = { 
/**
 * The cloud's origin.
 */
cloud: string, tiles: string, tile_attribution: string, 
/**
 * The offline map's file name when one is drawn instead of online tiles.
 */
offline_map: string | null, };

/**
 * How an [`AppError`] reaches the window (its `Serialize` below writes
 * exactly these two fields): declared for the generated TypeScript.
 */
export type AppError = { 
/**
 * Stable and machine-readable, e.g. `offline`, `signed_out`, `update_refused`.
 */
code: string, 
/**
 * A sentence for a person: what went wrong and what to do next.
 */
message: string, };

export type LiveEvent = { "kind": "connected" } | { "kind": "fix" } & LiveFix | { "kind": "zone", watch_id: string, event: ZoneEvent, } | { "kind": "lagged" } | { "kind": "refused", watch_id: string, message: string, } | { "kind": "offline", message: string, } | { "kind": "signed_out" };

/**
 * Which alerts the parent wants (the Settings screen).
 */
export type AlertPrefs = { 
/**
 * A watch that has not reported for this long is "quiet".
 */
quiet_minutes: number, quiet: boolean, battery: boolean, new_computer: boolean, watch_changes: boolean, 
/**
 * Safe zones (issue 16): a watch arrived at a zone, left one, or had
 * not arrived by a zone's scheduled time.
 */
zone_arrived: boolean, zone_left: boolean, zone_not_arrived: boolean, };

/**
 * What the Settings screen shows and saves: the file's values (with the
 * defaults filled in). `ca` empty means the public WebPKI roots.
 */
export type EditableSettings = { cloud: string, ca: string, tiles: string, tile_attribution: string, 
/**
 * Empty: online tiles.
 */
offline_map: string, 
/**
 * Empty: the feed this build was made with.
 */
update_feed: string, session_name: string, close_to_tray: boolean, start_at_login: boolean, alerts: AlertPrefs, };

/**
 * What the Settings screen gets: the file's values, where the file is,
 * which settings the environment overrides, and what is in use now.
 */
export type SettingsView = { values: EditableSettings, file: string, from_environment: Array<string>, cloud_in_use: string, tiles_in_use: string, };

/**
 * Which edits take effect only after a restart (the window's content
 * policy and the cloud connection are fixed at start).
 */
export type Saved = { restart_needed: boolean, };

/**
 * What a check for updates found.
 */
export type UpdateCheck = { "status": "no_feed", current: string, } | { "status": "up_to_date", current: string, } | { "status": "available", current: string, version: string, 
/**
 * What's new, as the release wrote it (plain text).
 */
notes: string, 
/**
 * When the release was published (RFC 3339), if the feed says.
 */
date: string | null, };

/**
 * What the window shows of the family's keys on this computer.
 */
export type FamilyKeysView = { "status": "trusted", 
/**
 * The names of the family's computers that hold the keys.
 */
computers: Array<string>, 
/**
 * The recovery key, shown until the parent says it is saved.
 */
recovery_key: string | null, } | { "status": "waiting_for_approval" };

/**
 * A computer asking to join, as the trusted computer lists it.
 */
export type JoinRequestInfo = { id: string, 
/**
 * The name the computer signed in with ("Office PC").
 */
name: string, 
/**
 * The co-parent whose computer it is; `None` for another computer of
 * the signed-in parent's own.
 */
member_name: string | null, created_at: number, };

/**
 * What a member may do in the family.
 */
export type FamilyRole = "owner" | "guardian";

/**
 * One member of the family, as every member sees it.
 */
export type FamilyMember = { account_id: string, name: string, role: FamilyRole, joined_at: number, 
/**
 * The account that founded the family: always an owner, never removed.
 */
founder: boolean, 
/**
 * The caller's own account.
 */
you: boolean, };

/**
 * An open invitation, as the family's owners see it (never its code).
 */
export type InvitationInfo = { id: string, role: FamilyRole, invited_by: string, created_at: number, expires_at: number, };

/**
 * `GET /api/v1/family/members`.
 */
export type FamilyMembers = { 
/**
 * The founder's name: what an invitee is shown before joining.
 */
family_name: string, your_role: FamilyRole, members: Array<FamilyMember>, 
/**
 * Open invitations; only owners see them.
 */
invitations: Array<InvitationInfo>, };

/**
 * A new invitation: the only time its code is shown.
 */
export type Invitation = { id: string, 
/**
 * 26 characters in groups of five.
 */
code: string, 
/**
 * The same code as a `waymark://invite/…` link.
 */
link: string, role: FamilyRole, expires_at: number, };

/**
 * What an invitee is shown before accepting.
 */
export type InvitationPreview = { family_name: string, invited_by: string, role: FamilyRole, expires_at: number, };
