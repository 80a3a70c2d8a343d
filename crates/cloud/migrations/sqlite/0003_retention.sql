-- How long an account's location history is kept, in days (the parent can change it).
ALTER TABLE accounts ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 30;
