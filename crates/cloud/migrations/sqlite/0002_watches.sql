-- Watches: devices known by their key, signed pairing offers (only the
-- code's hash is kept), the binding of a watch to one account, location
-- fixes, and rate-limit counters. Times are Unix ms.

CREATE TABLE devices (
    id            TEXT PRIMARY KEY,        -- derived from the device public key
    serial        TEXT NOT NULL,
    model         TEXT NOT NULL,
    certificate   BLOB NOT NULL,
    registered_at INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    revoked_at    INTEGER
);

CREATE TABLE pairing_offers (
    code_hash  TEXT PRIMARY KEY,
    device_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    spent_at   INTEGER
);
CREATE INDEX pairing_offers_device ON pairing_offers(device_id);

-- One row per device: a watch is bound to at most one account, ever (after
-- revocation its key is refused for good). revoked_at set = kept history.
CREATE TABLE bindings (
    device_id  TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    bound_at   INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX bindings_account ON bindings(account_id);

CREATE TABLE fixes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    t         INTEGER NOT NULL,
    lat       REAL NOT NULL,
    lon       REAL NOT NULL,
    acc       REAL NOT NULL,
    bat       INTEGER NOT NULL,
    seq       INTEGER NOT NULL
);
CREATE INDEX fixes_device_t ON fixes(device_id, t, id);

CREATE TABLE rate_limits (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
);
