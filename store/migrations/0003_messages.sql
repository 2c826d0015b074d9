-- Mail that follows an invitation: a reminder, a thank-you with a promo
-- code, an alert to the store's director. The same state machine as the
-- invitations outbox: planned -> sending -> sent | failed | bounced |
-- unknown; planned -> expired.
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL CHECK (kind IN ('reminder', 'thanks', 'alert')),
    invitation_id INTEGER NOT NULL REFERENCES invitations (id),
    email         TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('planned', 'sending', 'sent', 'failed', 'bounced', 'unknown', 'expired')),
    created_at    INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    sent_at       INTEGER,
    message_id    TEXT    NOT NULL DEFAULT '',
    last_error    TEXT    NOT NULL DEFAULT '',
    promo_code    TEXT,
    UNIQUE (kind, invitation_id, email)
);
CREATE INDEX messages_due ON messages (status, due_at);

-- Promo codes for thank-you emails: loaded from 1C's file, or generated
-- when none is left. A code is issued once.
CREATE TABLE promo_codes (
    code       TEXT PRIMARY KEY,
    origin     TEXT    NOT NULL CHECK (origin IN ('file', 'generated')),
    added_at   INTEGER NOT NULL,
    issued_at  INTEGER,
    message_id INTEGER UNIQUE REFERENCES messages (id)
);
CREATE INDEX promo_codes_free ON promo_codes (issued_at) WHERE issued_at IS NULL;
