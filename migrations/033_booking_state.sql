-- State the plan did not name but the services need to be correct under
-- crashes, restarts and several processes (see DESIGN.md "Contract details").

-- What happened to every lead the scheduler handled, readable through the API.
-- No foreign keys on the lead and user: `unknown_lead` is recorded for ids
-- that do not exist.
CREATE TABLE IF NOT EXISTS calendar_booking_outcomes (
    lead_analytics_id  UUID PRIMARY KEY,
    user_id            UUID NOT NULL,
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

-- Commands from the gateway, applied at most once: the reply is stored in the
-- same statement that applies the change, so a redelivered command gets the
-- stored answer instead of a second change.
CREATE TABLE IF NOT EXISTS calendar_commands (
    command_id   UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    command      VARCHAR(20) NOT NULL CHECK (command IN ('create', 'reschedule', 'cancel')),
    reply        JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_calendar_commands_created ON calendar_commands(created_at);

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

-- The meeting resource of the API and of command replies (the plan's
-- CalendarMeetingInterface, snake_case, without the raw Google response), in
-- one place so the gateway and the scheduler can never disagree on its shape.
-- Times are RFC 3339 in UTC; `timezone` names the zone to show them in.
CREATE OR REPLACE FUNCTION calendar_meeting_json(m calendar_meetings) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', m.id,
        'user_id', m.user_id,
        'lead_analytics_id', m.lead_analytics_id,
        'call_id', m.call_id,
        'contact_id', m.contact_id,
        'google_event_id', m.google_event_id,
        'google_calendar_id', m.google_calendar_id,
        'meeting_title', m.meeting_title,
        'meeting_description', m.meeting_description,
        'attendee_email', m.attendee_email,
        'attendee_name', m.attendee_name,
        'meeting_start_time', to_char(m.meeting_start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'meeting_end_time', to_char(m.meeting_end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'meeting_duration_minutes', m.meeting_duration_minutes,
        'timezone', m.timezone,
        'status', m.status,
        'cancellation_reason', m.cancellation_reason,
        'rescheduled_from_meeting_id', m.rescheduled_from_meeting_id,
        'ical_sequence', m.ical_sequence,
        'invite_email_sent', COALESCE(m.invite_email_sent, FALSE),
        'invite_email_sent_at', to_char(m.invite_email_sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'reminder_email_sent', COALESCE(m.reminder_email_sent, FALSE),
        'reminder_email_sent_at', to_char(m.reminder_email_sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'meet_link', m.meet_link,
        'html_link', m.html_link,
        'meeting_metadata', m.meeting_metadata,
        'created_at', to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'updated_at', to_char(m.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    )
$$;
