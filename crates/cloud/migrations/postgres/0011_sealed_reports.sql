-- Sealed reports (issue 13, docs/end-to-end-encryption.md §3): the cloud
-- keeps each batch as the watch signed it, encrypted to the family, and the
-- HPKE setup records the family's apps need to open them. Only the times
-- stay readable (order, retention, "last seen", budgets). The plaintext
-- fixes table goes, and with it every coordinate this cloud ever held.

DROP TABLE fixes CASCADE;

CREATE TABLE fix_setups (
    device_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    setup_id   TEXT NOT NULL,           -- base64url of SHA-256(enc)[..16]
    epoch      BIGINT NOT NULL,
    body       TEXT NOT NULL,           -- the signed setup record, JSON
    created_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, setup_id)
);
CREATE INDEX fix_setups_by_time ON fix_setups(device_id, created_at);

CREATE TABLE batches (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    seq       BIGINT NOT NULL,
    t_first   BIGINT NOT NULL,
    t_last    BIGINT NOT NULL,
    n         BIGINT NOT NULL,         -- fixes in the batch
    setup_id  TEXT NOT NULL,
    body      TEXT NOT NULL,            -- the signed sealed batch, JSON
    PRIMARY KEY (device_id, seq)
);
CREATE INDEX batches_by_time ON batches(device_id, t_last);
