-- foreign keys off
-- A CHECK on a list of more than two values makes SQLite build a
-- temporary index of the list for every row it checks, so each status
-- change of a piece of mail paid for one (about 6 us, a twentieth of what
-- sending a message costs). The same checks written as ORs compile to
-- comparisons. SQLite cannot change a constraint in place: the two outbox
-- tables are rebuilt as https://www.sqlite.org/lang_altertable.html
-- (section 7) describes, with foreign keys off; the runner checks that
-- none is broken before it commits.
CREATE TABLE invitations_new (
    id            INTEGER PRIMARY KEY,
    token         TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL,
    customer_code TEXT    NOT NULL,
    store_code    TEXT    NOT NULL,
    receipt       TEXT    NOT NULL,
    purchased_at  INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status = 'planned' OR status = 'sending' OR status = 'sent' OR status = 'failed'
                                          OR status = 'bounced' OR status = 'unknown' OR status = 'expired'),
    planned_at    INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    sent_at       INTEGER,
    message_id    TEXT    NOT NULL DEFAULT '',
    last_error    TEXT    NOT NULL DEFAULT '',
    lease_until   INTEGER,
    opened_at     INTEGER,
    UNIQUE (store_code, receipt)
);
INSERT INTO invitations_new (id, token, email, customer_code, store_code, receipt, purchased_at, status, planned_at,
                             due_at, expires_at, attempts, sent_at, message_id, last_error, lease_until, opened_at)
SELECT id, token, email, customer_code, store_code, receipt, purchased_at, status, planned_at,
       due_at, expires_at, attempts, sent_at, message_id, last_error, lease_until, opened_at
FROM invitations;
DROP TABLE invitations;
ALTER TABLE invitations_new RENAME TO invitations;
CREATE INDEX invitations_email ON invitations (email, planned_at);
CREATE INDEX invitations_planned ON invitations (due_at) WHERE status = 'planned';

CREATE TABLE messages_new (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL CHECK (kind = 'reminder' OR kind = 'thanks' OR kind = 'alert'),
    invitation_id INTEGER NOT NULL REFERENCES invitations (id),
    email         TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status = 'planned' OR status = 'sending' OR status = 'sent' OR status = 'failed'
                                          OR status = 'bounced' OR status = 'unknown' OR status = 'expired'),
    created_at    INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    sent_at       INTEGER,
    message_id    TEXT    NOT NULL DEFAULT '',
    last_error    TEXT    NOT NULL DEFAULT '',
    promo_code    TEXT,
    lease_until   INTEGER,
    UNIQUE (kind, invitation_id, email)
);
INSERT INTO messages_new (id, kind, invitation_id, email, status, created_at, due_at, expires_at, attempts, sent_at,
                          message_id, last_error, promo_code, lease_until)
SELECT id, kind, invitation_id, email, status, created_at, due_at, expires_at, attempts, sent_at,
       message_id, last_error, promo_code, lease_until
FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE INDEX messages_planned ON messages (due_at) WHERE status = 'planned';
