-- Times are unix seconds in UTC; money is integer kopecks; quantities are
-- integer thousandths (1,5 kg = 1500).

-- The files ledger: one row per file version seen on a source. A file is
-- identified on the source by (source, name, size, mtime) so that a folder
-- that keeps its files is not downloaded again every run, and by sha256 so
-- that the same bytes under another name are never loaded twice.
CREATE TABLE files (
    id             INTEGER PRIMARY KEY,
    source         TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    size           INTEGER NOT NULL,
    mtime          INTEGER NOT NULL,
    sha256         TEXT    NOT NULL,
    feed           TEXT    NOT NULL,
    encoding       TEXT    NOT NULL DEFAULT '',
    status         TEXT    NOT NULL CHECK (status IN ('loading', 'ingested', 'failed', 'skipped_duplicate')),
    rows_loaded    INTEGER NOT NULL DEFAULT 0,
    rows_duplicate INTEGER NOT NULL DEFAULT 0,
    rows_rejected  INTEGER NOT NULL DEFAULT 0,
    error          TEXT    NOT NULL DEFAULT '',
    started_at     INTEGER NOT NULL,
    finished_at    INTEGER,
    UNIQUE (source, name, size, mtime)
);
CREATE INDEX files_sha256 ON files (sha256, status);

-- Rows that could not be read or were invalid, with where and why.
CREATE TABLE rejects (
    id      INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    line    INTEGER NOT NULL,
    field   TEXT    NOT NULL DEFAULT '',
    reason  TEXT    NOT NULL
);
CREATE INDEX rejects_file ON rejects (file_id);

CREATE TABLE stores (
    code           TEXT PRIMARY KEY,
    name           TEXT NOT NULL DEFAULT '',
    city           TEXT NOT NULL DEFAULT '',
    timezone       TEXT NOT NULL DEFAULT '',
    region         TEXT NOT NULL DEFAULT '',
    director_email TEXT NOT NULL DEFAULT '',
    updated_at     INTEGER NOT NULL
);

-- A customer is its 1C card. email is normalized (lower case) or NULL;
-- forgotten cards keep only their code and are never updated again.
CREATE TABLE customers (
    code       TEXT PRIMARY KEY,
    name       TEXT,
    email      TEXT,
    phone      TEXT,
    birth_date TEXT,
    consent    INTEGER NOT NULL DEFAULT 0,
    store_code TEXT    NOT NULL DEFAULT '',
    forgotten  INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);
CREATE INDEX customers_email ON customers (email) WHERE email IS NOT NULL;
CREATE INDEX customers_phone ON customers (phone) WHERE phone IS NOT NULL;

-- A purchase line is (store, receipt, line). customer_code is '' for a
-- receipt without a loyalty card.
CREATE TABLE purchase_lines (
    store_code    TEXT    NOT NULL,
    receipt       TEXT    NOT NULL,
    line          INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    customer_code TEXT    NOT NULL DEFAULT '',
    product_code  TEXT    NOT NULL DEFAULT '',
    product       TEXT    NOT NULL DEFAULT '',
    category      TEXT    NOT NULL DEFAULT '',
    qty_milli     INTEGER NOT NULL,
    price_kop     INTEGER NOT NULL,
    sum_kop       INTEGER NOT NULL,
    seller        TEXT    NOT NULL DEFAULT '',
    file_id       INTEGER NOT NULL,
    PRIMARY KEY (store_code, receipt, line)
);
CREATE INDEX purchase_lines_at ON purchase_lines (at);

-- The invitations outbox: the only state machine for survey mail.
-- planned -> sending -> sent | failed | bounced | unknown; planned -> expired.
CREATE TABLE invitations (
    id            INTEGER PRIMARY KEY,
    token         TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL,
    customer_code TEXT    NOT NULL,
    store_code    TEXT    NOT NULL,
    receipt       TEXT    NOT NULL,
    purchased_at  INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('planned', 'sending', 'sent', 'failed', 'bounced', 'unknown', 'expired')),
    planned_at    INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    sent_at       INTEGER,
    message_id    TEXT    NOT NULL DEFAULT '',
    last_error    TEXT    NOT NULL DEFAULT '',
    UNIQUE (store_code, receipt)
);
CREATE INDEX invitations_email ON invitations (email, planned_at);
CREATE INDEX invitations_due ON invitations (status, due_at);

-- One response per invitation. rating is CSI 1..5, nps 0..10 or NULL.
CREATE TABLE responses (
    id            INTEGER PRIMARY KEY,
    invitation_id INTEGER NOT NULL UNIQUE REFERENCES invitations (id),
    store_code    TEXT    NOT NULL,
    rating        INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    nps           INTEGER CHECK (nps BETWEEN 0 AND 10),
    comment       TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
);
CREATE INDEX responses_created ON responses (created_at);

-- What was good or bad in an answer, one row per category and tone.
CREATE TABLE response_categories (
    response_id INTEGER NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    category    TEXT    NOT NULL,
    tone        TEXT    NOT NULL CHECK (tone IN ('positive', 'negative')),
    PRIMARY KEY (response_id, category, tone)
);

-- Addresses that get no more mail. email is the normalized address, or
-- 'sha256:<hex>' of it for a customer whose data was erased on request.
CREATE TABLE suppressions (
    email      TEXT PRIMARY KEY,
    reason     TEXT    NOT NULL CHECK (reason IN ('unsubscribed', 'bounced', 'forgotten')),
    created_at INTEGER NOT NULL
);

-- Every run of a scheduled or manual step, for status and catch-up.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    job         TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX runs_job ON runs (job, started_at);
