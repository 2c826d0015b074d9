-- Purchase lines are found by time through ranges of their ids instead of
-- an index by the hour. A large export's lines come in receipt order with
-- times all over its month, and the hour index took an insert at one of
-- some 720 places for every line: a third of a first load's time. Lines
-- are appended in the order they load, so a nightly drop's lines (1C
-- numbers receipts in time order) sit together; each batch records, for
-- every run of up to a few thousand ids it appends, the earliest and the
-- latest time among them. A query by time reads the ranges whose times
-- meet its period, then the lines of those ids, then keeps the exact
-- times (see linesIn and linesAt).
--
-- The ids must stay what the ranges say, through VACUUM and VACUUM INTO
-- (the nightly backup), which may renumber an implicit rowid: the table
-- is rebuilt with an explicit INTEGER PRIMARY KEY, its rowids kept. A new
-- line's id is the largest plus one, so an id is never given twice while
-- no line is deleted, and none is: a line once loaded stays as it is (see
-- purchase_blocks too). The trigger holds anyone to that. (AUTOINCREMENT
-- would allow deletes, at a twentieth of a load's time.)
CREATE TABLE purchase_lines_new (
    id            INTEGER PRIMARY KEY,
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
    UNIQUE (store_code, receipt, line)
);
INSERT INTO purchase_lines_new (id, store_code, receipt, line, at, customer_code, product_code, product,
    category, qty_milli, price_kop, sum_kop, seller, file_id)
SELECT rowid, store_code, receipt, line, at, customer_code, product_code, product,
    category, qty_milli, price_kop, sum_kop, seller, file_id
FROM purchase_lines ORDER BY rowid;
DROP TABLE purchase_lines;
ALTER TABLE purchase_lines_new RENAME TO purchase_lines;
CREATE INDEX purchase_lines_uncategorized ON purchase_lines (product_code) WHERE category = '';
CREATE TRIGGER purchase_lines_kept BEFORE DELETE ON purchase_lines
BEGIN
    SELECT RAISE(ABORT, 'purchase lines are never deleted: purchase_ranges and purchase_blocks would no longer match them');
END;

-- Lines first_id to last_id (ids of purchase_lines, inclusive) were all
-- appended by one batch, at times from first_at to last_at (unix seconds,
-- inclusive). Ranges do not overlap.
CREATE TABLE purchase_ranges (
    first_id INTEGER PRIMARY KEY,
    last_id  INTEGER NOT NULL,
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL
);
INSERT INTO purchase_ranges (first_id, last_id, first_at, last_at)
SELECT min(id), max(id), min(at), max(at) FROM purchase_lines GROUP BY id / 2048;
