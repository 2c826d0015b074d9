-- Blocks of a purchases export that a load read and wrote whole, by the
-- hash of their text. A purchase line is never changed once loaded, so a
-- later export repeating a block (the month re-exported each night) adds
-- nothing with it: the load passes over the block without parsing it or
-- looking up its lines. file_id is the file that first loaded it.
CREATE TABLE purchase_blocks (
    hash    BLOB    NOT NULL PRIMARY KEY,
    file_id INTEGER NOT NULL
) WITHOUT ROWID;
