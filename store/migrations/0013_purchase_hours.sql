-- Purchase lines are found by time through their hour (unix time / 3600),
-- not the exact time. A drop's lines come in receipt order, days apart:
-- each went into the time index at a random place, a B-tree descent and,
-- once the index outgrew the page cache (a few million lines), a page
-- read from disk. An hour's lines follow one another in the index, so a
-- batch appends to the few hundred hours it touches. Queries give the
-- hour range and then the exact times (see linesAt).
DROP INDEX IF EXISTS purchase_lines_at;
CREATE INDEX purchase_lines_hour ON purchase_lines (at / 3600);
