-- When the customer first opened the survey from the email (the only
-- opening otklik can know: it puts no tracking pixel in its mail).
ALTER TABLE invitations ADD COLUMN opened_at INTEGER;
