-- A watch's sequence number and ingest budget in a narrow row of their own:
-- every stored batch rewrites this row, never the wide devices row (with
-- its certificate). WITHOUT ROWID: the row lives in its key's b-tree, so an
-- update writes one page, not a table page and an index page.
CREATE TABLE device_counters (
    device_id           TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    last_seq            INTEGER NOT NULL DEFAULT 0,
    budget_window_start INTEGER NOT NULL DEFAULT 0,
    budget_window_fixes INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO device_counters (device_id, last_seq, budget_window_start, budget_window_fixes)
    SELECT id, last_seq, budget_window_start, budget_window_fixes FROM devices;
