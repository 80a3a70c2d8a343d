-- Each watch's ingest budget: fixes accepted in the current window, so one
-- watch (a faulty one, or a stolen key) cannot flood the store.
ALTER TABLE devices ADD COLUMN budget_window_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN budget_window_fixes INTEGER NOT NULL DEFAULT 0;
