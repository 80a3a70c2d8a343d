-- Watches: devices known by their key, signed pairing offers (only the
-- code's hash is kept), the binding of a watch to one account, location
-- fixes, and rate-limit counters. Times are Unix ms.

CREATE TABLE devices (
    id            TEXT PRIMARY KEY,        -- derived from the device public key
    serial        TEXT NOT NULL,
    model         TEXT NOT NULL,
    certificate   BYTEA NOT NULL,
    registered_at BIGINT NOT NULL,
    last_seq      BIGINT NOT NULL DEFAULT 0,
    revoked_at    BIGINT
);

CREATE TABLE pairing_offers (
    code_hash  TEXT PRIMARY KEY,
    device_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    spent_at   BIGINT
);
CREATE INDEX pairing_offers_device ON pairing_offers(device_id);

-- One row per device: a watch is bound to at most one account, ever (after
-- revocation its key is refused for good). revoked_at set = kept history.
CREATE TABLE bindings (
    device_id  TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    bound_at   BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX bindings_account ON bindings(account_id);

-- Partitioned by fix time (one partition a month, made ahead by the cloud's
-- minute pass; a default partition takes anything outside them, so no fix
-- is ever refused for want of a partition). Old months can be dropped whole.
CREATE TABLE fixes (
    id        BIGINT GENERATED ALWAYS AS IDENTITY,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    t         BIGINT NOT NULL,
    lat       DOUBLE PRECISION NOT NULL,
    lon       DOUBLE PRECISION NOT NULL,
    acc       DOUBLE PRECISION NOT NULL,
    bat       BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (id, t)
) PARTITION BY RANGE (t);
CREATE TABLE fixes_default PARTITION OF fixes DEFAULT;
CREATE INDEX fixes_device_t ON fixes(device_id, t, id);

CREATE TABLE rate_limits (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL
);
