-- A computer without the family's keys asking for them, and the approval
-- exchange the cloud relays (issue 13, docs/end-to-end-encryption.md §5):
-- public keys and SPAKE2 messages only, nothing to guess the code from. A
-- request moves forward only (waiting, offered, answered, approved), is
-- deleted when either computer ends it, and lives 15 minutes.
CREATE TABLE join_requests (
    id                    TEXT PRIMARY KEY,
    account_id            TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    session_id            TEXT NOT NULL,
    signing               TEXT NOT NULL,
    sealing               TEXT NOT NULL,
    state                 TEXT NOT NULL,
    offer                 TEXT,
    offer_session_id      TEXT,
    answer_message        TEXT,
    answer_confirmation   TEXT,
    approval_confirmation TEXT,
    approval_sealed       TEXT,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL
);
CREATE INDEX join_requests_account ON join_requests (account_id, expires_at);
