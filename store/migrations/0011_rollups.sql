-- Daily roll-ups, so that reports never scan a year of purchase lines or
-- answers, and monthly sums of them for the 12-month sheets. Days and
-- months are local dates ('2026-11-05', '2026-11') in the zone recorded in
-- rollup_state; a change of zone rebuilds them.
CREATE TABLE sales_daily (
    day         TEXT    NOT NULL,
    store_code  TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    revenue_kop INTEGER NOT NULL, -- sales lines (positive quantity)
    returns_kop INTEGER NOT NULL, -- return lines, as a positive amount
    receipts    INTEGER NOT NULL, -- receipts with a line of the category
    lines       INTEGER NOT NULL,
    PRIMARY KEY (day, store_code, category)
) WITHOUT ROWID;

CREATE TABLE sales_monthly (
    month       TEXT    NOT NULL,
    store_code  TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    revenue_kop INTEGER NOT NULL,
    returns_kop INTEGER NOT NULL,
    receipts    INTEGER NOT NULL,
    lines       INTEGER NOT NULL,
    PRIMARY KEY (month, store_code, category)
) WITHOUT ROWID;

CREATE TABLE feedback_daily (
    day        TEXT    NOT NULL,
    store_code TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    tone       TEXT    NOT NULL,
    answers    INTEGER NOT NULL,
    PRIMARY KEY (day, store_code, category, tone)
) WITHOUT ROWID;

CREATE TABLE feedback_monthly (
    month      TEXT    NOT NULL,
    store_code TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    tone       TEXT    NOT NULL,
    answers    INTEGER NOT NULL,
    PRIMARY KEY (month, store_code, category, tone)
) WITHOUT ROWID;

-- UTC days (unix time / 86400) whose lines or answers changed since their
-- roll-ups were computed. mark is new on every change, so a refresh
-- clears only the marks it has seen.
CREATE TABLE rollup_dirty (
    kind TEXT    NOT NULL CHECK (kind IN ('sales', 'feedback')),
    day  INTEGER NOT NULL,
    mark INTEGER NOT NULL,
    PRIMARY KEY (kind, day)
) WITHOUT ROWID;

-- The zone the roll-ups' days are in; empty until the first refresh,
-- which builds them from everything loaded so far.
CREATE TABLE rollup_state (
    zone TEXT NOT NULL
);
INSERT INTO rollup_state (zone) VALUES ('');
