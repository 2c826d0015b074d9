-- Index only what waits to be sent: a message changing from planned to
-- sending to sent then touches the index once, not at every step.
DROP INDEX invitations_due;
CREATE INDEX invitations_planned ON invitations (due_at) WHERE status = 'planned';
DROP INDEX messages_due;
CREATE INDEX messages_planned ON messages (due_at) WHERE status = 'planned';
