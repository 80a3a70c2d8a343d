-- The family's keys (issue 13; docs/end-to-end-encryption.md §6–§8). The
-- cloud keeps what the family's computers publish and can read none of it:
-- roster versions (signed lists of the computers holding the keys), stored
-- append-only exactly as signed, and epoch keys encrypted to one recipient
-- each (a computer or the family's recovery key).
CREATE TABLE family_rosters (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    version    BIGINT NOT NULL,
    roster     TEXT NOT NULL,
    -- Version 1 only: the recovery key's signature over it (RecoveryAnchor).
    recovery_anchor TEXT,
    session_id TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, version)
);
CREATE TABLE epoch_key_blobs (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    recipient  TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    blob       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, recipient, epoch)
);
