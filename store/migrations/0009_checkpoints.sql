-- How far the load of a file got: each batch commits its rows together
-- with the counts so far and the last line (or document) it covered, so
-- that a load cut off by a crash resumes after it and ends with exactly
-- the rows and counts of an uninterrupted load.
ALTER TABLE files ADD COLUMN checkpoint INTEGER NOT NULL DEFAULT 0;
