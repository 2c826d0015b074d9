-- How many entries each listing of a source showed, kept 40 days, so that
-- a folder that is normally full and lists empty all day is reported.
CREATE TABLE listing_counts (
    source  TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    entries INTEGER NOT NULL
);
CREATE INDEX listing_counts_source ON listing_counts (source, at);
