-- Safe zones (issue 16, docs/end-to-end-encryption.md §13). The cloud keeps
-- only sealed, signed zone sets: the family's own copy (sealed to its key
-- epoch, for every family computer) and one copy per watch (sealed to that
-- watch's zone key). No zone's place, shape, name or schedule is readable
-- here. A watch's word on its zones is its last signed status poll that
-- carried one, kept whole so the family's apps check the watch's signature.

CREATE TABLE family_zone_sets (
    family_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    version   BIGINT NOT NULL,
    sealed    TEXT NOT NULL,         -- the sealed zone set, JSON
    saved_at  BIGINT NOT NULL
);

CREATE TABLE watch_zone_sets (
    device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    family_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    version   BIGINT NOT NULL,
    sealed    TEXT NOT NULL          -- the sealed zone set, JSON
);

CREATE TABLE watch_zone_words (
    device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    word      TEXT NOT NULL,         -- the signed status poll, JSON
    at        BIGINT NOT NULL
);
