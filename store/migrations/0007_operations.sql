-- Conditions the administrator is told about once when they start and
-- once when they end: a missing or small drop, SMTP refusing, a full disk.
CREATE TABLE admin_alerts (
    key        TEXT PRIMARY KEY,
    active     INTEGER NOT NULL,
    since      INTEGER NOT NULL,
    detail     TEXT    NOT NULL DEFAULT ''
);

-- How many files each source listed last, to notice a folder that is
-- normally full coming back empty.
ALTER TABLE source_health ADD COLUMN listed INTEGER NOT NULL DEFAULT -1;
