-- Co-parents (issue 13, docs/end-to-end-encryption.md §14). A family is
-- named by the account that founded it: every family-data table keyed by
-- `account_id` before this migration (bindings, family_rosters,
-- epoch_key_blobs, epoch_switches, family_computers, join_requests, the
-- retention setting) is keyed by the family's founding account from now on,
-- so no row moves. Each account is a member of exactly one family: its own
-- until it joins another, and its own again when it leaves.
CREATE TABLE family_members (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    family_id  TEXT NOT NULL REFERENCES accounts(id),
    role       TEXT NOT NULL CHECK (role IN ('owner', 'guardian')),
    joined_at  BIGINT NOT NULL
);
CREATE INDEX family_members_family ON family_members (family_id);
INSERT INTO family_members (account_id, family_id, role, joined_at)
    SELECT id, id, 'owner', created_at FROM accounts;

-- Invitations: only the code's SHA-256 is kept (128 random bits need no slow
-- hash). Single use, 7 days, cancellable; the state only moves away from
-- 'open'.
CREATE TABLE invitations (
    id         TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'guardian')),
    created_by TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('open', 'used', 'cancelled', 'expired')),
    ended_at   BIGINT,
    used_by    TEXT
);
CREATE INDEX invitations_family ON invitations (family_id, state);

-- The family's events (watches, keys, members, settings) are shown to every
-- member; an account's own (passkeys, sign-ins) only to that account.
ALTER TABLE activity ADD COLUMN family_id TEXT;
UPDATE activity SET family_id = account_id
    WHERE kind LIKE 'watch.%' OR kind LIKE 'family.%' OR kind LIKE 'settings.%';
CREATE INDEX activity_family_at ON activity (family_id, at);
