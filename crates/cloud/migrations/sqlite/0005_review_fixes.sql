-- The confirming browser's one-time secret (its SHA-256): adding a passkey
-- needs it, so an enrolment link alone is worth nothing.
ALTER TABLE auth_requests ADD COLUMN confirm_hash TEXT;
-- The time of the last status poll the cloud accepted from each watch: a
-- poll must be newer, so a captured one cannot be replayed.
ALTER TABLE devices ADD COLUMN status_at INTEGER NOT NULL DEFAULT 0;
