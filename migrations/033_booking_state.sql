-- State the plan did not name but the services need to be correct under
-- crashes, restarts and several processes (see DESIGN.md "Contract details").

-- What happened to every lead the scheduler handled, readable through the API.
CREATE TABLE IF NOT EXISTS calendar_booking_outcomes (
    lead_analytics_id  UUID PRIMARY KEY REFERENCES lead_analytics(id) ON DELETE CASCADE,
    user_id            UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    outcome            VARCHAR(20) NOT NULL CHECK (outcome IN ('scheduled', 'skipped', 'failed')),
    reason             VARCHAR(50),
    detail             TEXT,
    meeting_id         UUID REFERENCES calendar_meetings(id) ON DELETE SET NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CHECK (reason IS NULL OR reason IN ('no_datetime', 'bad_datetime', 'past_datetime', 'no_email',
        'not_connected', 'not_individual', 'google_rejected', 'retries_exhausted',
        'grant_revoked', 'unknown_lead'))
);
CREATE INDEX IF NOT EXISTS idx_booking_outcomes_user ON calendar_booking_outcomes(user_id);

-- A booking generation per lead: the Google event id is derived from the lead
-- and this number, because Google keeps a deleted event's id reserved.
ALTER TABLE calendar_meetings
    ADD COLUMN IF NOT EXISTS booking_generation  INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS ical_sequence       INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS meet_link           TEXT,
    ADD COLUMN IF NOT EXISTS html_link           TEXT,
    ADD COLUMN IF NOT EXISTS reminder_claimed_until TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS reminder_queued_at  TIMESTAMPTZ;

CREATE INDEX IF NOT EXISTS idx_calendar_meetings_reminder_due ON calendar_meetings(meeting_start_time)
    WHERE status = 'scheduled' AND reminder_queued_at IS NULL;

-- OAuth connects in progress: single use, expiring, bound to the user, with the
-- PKCE verifier (sealed). Only a hash of the state is stored, so a database
-- reader cannot complete someone else's connect.
CREATE TABLE IF NOT EXISTS oauth_states (
    state_hash     BYTEA PRIMARY KEY,
    user_id        UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_verifier  TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS idx_oauth_states_expires ON oauth_states(expires_at);

-- The mailer's commit point: a job's message_id is recorded as `sending`
-- before SMTP and `sent` after the server's 250.
CREATE TABLE IF NOT EXISTS mail_deliveries (
    message_id   VARCHAR(255) PRIMARY KEY,
    kind         VARCHAR(50) NOT NULL,
    meeting_id   UUID REFERENCES calendar_meetings(id) ON DELETE SET NULL,
    user_id      UUID REFERENCES users(id) ON DELETE CASCADE,
    status       VARCHAR(20) NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    sent_at      TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS idx_mail_deliveries_meeting ON mail_deliveries(meeting_id);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['calendar_booking_outcomes', 'mail_deliveries'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'update_' || t || '_updated_at') THEN
            EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()',
                           'update_' || t || '_updated_at', t);
        END IF;
    END LOOP;
END
$$;
