-- Product groups and products from CommerceML catalogs, so that order
-- lines (which name only a product) get their category, whichever file
-- arrives first.
CREATE TABLE product_groups (
    id     TEXT PRIMARY KEY,
    name   TEXT NOT NULL,
    parent TEXT NOT NULL DEFAULT ''
);

CREATE TABLE products (
    code     TEXT PRIMARY KEY,
    name     TEXT NOT NULL DEFAULT '',
    group_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX purchase_lines_uncategorized ON purchase_lines (product_code) WHERE category = '';
