-- A row that loads without one of its values (a customer's email that is
-- not an address, a phone that is not a number, a birth date that is not
-- a date) is listed with the rejected rows, marked kept, so that the 1C
-- administrator can mend the card; files count such values.
ALTER TABLE rejects ADD COLUMN kept INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN values_dropped INTEGER NOT NULL DEFAULT 0;
