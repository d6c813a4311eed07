-- An append no longer rewrites its workflow's row. The row held `last_seq` and `updated_at`,
-- which every append changed: two more pages (the row's and its `workflows_by_status` entry's)
-- written to the WAL on each commit, on the path of every live event. Both are now read off the
-- log instead — `last_seq` is the largest `seq` of the workflow's events (one step down the
-- events' primary key), `updated_at` the `ts` of that event — and the row changes only when the
-- status does.
ALTER TABLE workflows DROP COLUMN last_seq;
-- When the status last changed (the creation, or the `workflow_status` event that changed it).
-- Nothing is appended after a terminal status, so for a finished workflow this is also its
-- last event's time: what retention sweeps by (`workflows_by_status`, renamed with it).
ALTER TABLE workflows RENAME COLUMN updated_at TO status_at;
