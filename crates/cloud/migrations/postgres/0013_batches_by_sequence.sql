-- One index less per stored batch (issue 13's ingest target). A second
-- index on (device_id, t_last) cost every batch one more randomly placed
-- index page in each commit's write-ahead log, and cut ingest to 0.7 of its
-- pre-encryption rate on long runs. Time-range reads now find where to start
-- on the primary key instead, through `t_max`: the latest fix time among the
-- device's batches up to and including this one. It never decreases along a
-- device's sequence numbers, so the first batch that can reach a time is
-- found by bisection, and no batch before it holds a fix that late.
-- (A watch may restamp a batch after a clock repair, so t_last alone is not
-- ordered by sequence number; t_max is.)

DROP INDEX batches_by_time;

ALTER TABLE batches ADD COLUMN t_max BIGINT NOT NULL DEFAULT 0;
UPDATE batches SET t_max = w.m
FROM (SELECT device_id, seq, MAX(t_last) OVER (PARTITION BY device_id ORDER BY seq) AS m
      FROM batches) AS w
WHERE batches.device_id = w.device_id AND batches.seq = w.seq;

-- What the ingest writer continues from.
ALTER TABLE device_counters ADD COLUMN t_max BIGINT NOT NULL DEFAULT 0;
UPDATE device_counters SET t_max = COALESCE(
    (SELECT MAX(t_last) FROM batches WHERE batches.device_id = device_counters.device_id), 0);
