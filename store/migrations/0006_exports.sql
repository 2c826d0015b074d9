-- Days whose answers, promo codes and unsubscribes were written back for
-- 1C; the export catches up on days missed while the server was down.
CREATE TABLE exports (
    day     TEXT PRIMARY KEY, -- YYYY-MM-DD in the chain's time zone
    done_at INTEGER NOT NULL
);
