-- What each source listed last, so that a file is taken only when its
-- size and mtime have stayed the same for a while (uploads in progress
-- look like complete files).
CREATE TABLE listings (
    source     TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    mtime      INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (source, name)
);

-- Consecutive failed runs of each source, and whether the administrator
-- was told, so that an outage is reported once and its end once.
CREATE TABLE source_health (
    source     TEXT PRIMARY KEY,
    failures   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT    NOT NULL DEFAULT '',
    alerted    INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);
