-- Parents' accounts, their passkeys, sign-in ceremonies, signed-in computers
-- (sessions) and their tokens, and the activity log. Times are Unix ms.
-- Every secret (code, token) is stored only as its SHA-256 hash.

CREATE TABLE accounts (
    id               TEXT PRIMARY KEY,
    webauthn_user_id TEXT NOT NULL UNIQUE,
    display_name     TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);

CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    passkey       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_account ON passkeys(account_id);

-- A validated /authorize request (sign-in) or a passkey enrollment link.
CREATE TABLE auth_requests (
    id             TEXT PRIMARY KEY,
    purpose        TEXT NOT NULL CHECK (purpose IN ('sign_in', 'enroll')),
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    state          TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    account_id     TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    session_id     TEXT,
    verified_at    INTEGER,
    expires_at     INTEGER NOT NULL
);

-- WebAuthn ceremony state, so any instance can finish what another started.
CREATE TABLE ceremonies (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('register', 'sign_in', 'verify')),
    request_id   TEXT NOT NULL REFERENCES auth_requests(id) ON DELETE CASCADE,
    state        TEXT NOT NULL,
    display_name TEXT,
    user_id      TEXT,
    expires_at   INTEGER NOT NULL
);

CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    -- Set when the code is exchanged; a second exchange ends this session.
    session_id     TEXT
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    ended_at     INTEGER,
    end_reason   TEXT
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    spent_at   INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);
CREATE INDEX access_tokens_session ON access_tokens(session_id);

CREATE TABLE activity (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    at               INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    actor_session_id TEXT,
    detail           TEXT NOT NULL
);
CREATE INDEX activity_account_at ON activity(account_id, at);
