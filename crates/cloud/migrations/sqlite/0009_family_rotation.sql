-- Rotating the family's key when a computer leaves (issue 13, design §7).
-- Which roster computer each session is (as the app says; a wrong claim
-- only ever makes a computer leave), and the epoch switches the family's
-- computers signed, stored append-only for the watches and the apps.
CREATE TABLE family_computers (
    session_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    signing    TEXT NOT NULL
);
CREATE INDEX family_computers_account ON family_computers (account_id);
CREATE TABLE epoch_switches (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    epoch      INTEGER NOT NULL,
    switch     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, epoch)
);
