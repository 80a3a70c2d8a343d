-- Pairing v2 (issue 13, docs/end-to-end-encryption.md §4): an offer is found
-- by its code's public locator and carries the watch's SPAKE2 message; the
-- cloud keeps nothing derived from the code's secret. An offer takes one
-- answer (the family's message and its sealed bundle, relayed to the watch)
-- and then the watch's signed word: paired or wrong code. Offers of v1 held a
-- hash of the code and are dropped (they lived ten minutes at most).
DROP TABLE pairing_offers;
CREATE TABLE pairing_offers (
    locator            TEXT PRIMARY KEY,
    device_id          TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    signed_offer       TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    account_id         TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    session_id         TEXT,
    source             TEXT, -- the answering address, charged if the code was wrong
    answer             TEXT,
    answered_at        BIGINT,
    outcome            TEXT,
    watch_confirmation TEXT,
    finished_at        BIGINT
);
CREATE INDEX pairing_offers_device ON pairing_offers(device_id);
