-- A watch's sequence number and ingest budget in a narrow row of their own:
-- every stored batch rewrites this row, never the wide devices row (with
-- its certificate).
CREATE TABLE device_counters (
    device_id           TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    last_seq            BIGINT NOT NULL DEFAULT 0,
    budget_window_start BIGINT NOT NULL DEFAULT 0,
    budget_window_fixes BIGINT NOT NULL DEFAULT 0
);
INSERT INTO device_counters (device_id, last_seq, budget_window_start, budget_window_fixes)
    SELECT id, last_seq, budget_window_start, budget_window_fixes FROM devices;
