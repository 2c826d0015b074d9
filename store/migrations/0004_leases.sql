-- A claimed piece of mail is leased to a sender until lease_until and
-- stays "planned"; it becomes "sending" only right before its SMTP
-- transaction. A sender that dies leaves its unstarted claims to expire
-- (or to be released at the next start), so only what was really in
-- flight is reported "unknown".
ALTER TABLE invitations ADD COLUMN lease_until INTEGER;
ALTER TABLE messages ADD COLUMN lease_until INTEGER;
