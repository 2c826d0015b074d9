-- Whether a send run is under way: set as one starts, cleared when it
-- ends with everything it claimed settled. Only a run that did not end
-- so (the process died, the database failed) can leave mail "sending" or
-- leased, so only then does the next run look for such mail; looking
-- scans both outbox tables, seconds at every run once they hold years of
-- mail. Set here so that the first run after the upgrade looks.
CREATE TABLE send_state (
    running INTEGER NOT NULL
);
INSERT INTO send_state (running) VALUES (1);
