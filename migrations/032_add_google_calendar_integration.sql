-- The plan's migration 032, corrected (see DESIGN.md, "Where the plan is wrong"):
--  * no UNIQUE(user_id, google_event_id): a reschedule keeps the same Google
--    event in a new row, so uniqueness covers only rows not `rescheduled`;
--  * one active (`scheduled`) meeting per lead, enforced by the database, so a
--    redelivered message or a crashed worker cannot book a lead twice;
--  * gen_random_uuid() (core PostgreSQL) instead of uuid-ossp;
--  * tokens are stored sealed (libsodium AEAD, "v<version>:<base64>"), never
--    in plain text, and the calendar's IANA time zone is kept for display.

ALTER TABLE users
    ADD COLUMN IF NOT EXISTS google_access_token        TEXT,
    ADD COLUMN IF NOT EXISTS google_refresh_token       TEXT,
    ADD COLUMN IF NOT EXISTS google_token_expiry        TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS google_calendar_connected  BOOLEAN DEFAULT FALSE,
    ADD COLUMN IF NOT EXISTS google_calendar_id         VARCHAR(255),
    ADD COLUMN IF NOT EXISTS google_email               VARCHAR(255),
    ADD COLUMN IF NOT EXISTS google_calendar_timezone   VARCHAR(100),
    ADD COLUMN IF NOT EXISTS google_scopes              TEXT,
    ADD COLUMN IF NOT EXISTS google_connected_at        TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS google_disconnected_at     TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS google_disconnect_reason   VARCHAR(100),
    ADD COLUMN IF NOT EXISTS google_disconnect_notified_at TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS google_disconnect_claimed_until TIMESTAMPTZ;

CREATE INDEX IF NOT EXISTS idx_users_google_connected ON users(google_calendar_connected)
    WHERE google_calendar_connected = TRUE;

CREATE TABLE IF NOT EXISTS calendar_meetings (
    id                          UUID PRIMARY KEY DEFAULT gen_random_uuid(),

    user_id                     UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    lead_analytics_id           UUID REFERENCES lead_analytics(id) ON DELETE SET NULL,
    call_id                     UUID REFERENCES calls(id) ON DELETE SET NULL,
    contact_id                  UUID REFERENCES contacts(id) ON DELETE SET NULL,

    google_event_id             VARCHAR(255) NOT NULL,
    google_calendar_id          VARCHAR(255) NOT NULL,

    meeting_title               VARCHAR(500) NOT NULL,
    meeting_description         TEXT,
    attendee_email              VARCHAR(255) NOT NULL,
    attendee_name               VARCHAR(255),

    meeting_start_time          TIMESTAMPTZ NOT NULL,
    meeting_end_time            TIMESTAMPTZ NOT NULL,
    meeting_duration_minutes    INTEGER DEFAULT 30,
    timezone                    VARCHAR(100),

    status                      VARCHAR(50) DEFAULT 'scheduled',
    cancellation_reason         TEXT,
    rescheduled_from_meeting_id UUID REFERENCES calendar_meetings(id),

    invite_email_sent           BOOLEAN DEFAULT FALSE,
    invite_email_sent_at        TIMESTAMPTZ,
    reminder_email_sent         BOOLEAN DEFAULT FALSE,
    reminder_email_sent_at      TIMESTAMPTZ,

    google_api_response         JSONB,
    meeting_metadata            JSONB,

    created_at                  TIMESTAMPTZ DEFAULT NOW(),
    updated_at                  TIMESTAMPTZ DEFAULT NOW(),
    created_by                  UUID REFERENCES users(id),

    CHECK (meeting_end_time > meeting_start_time),
    CHECK (status IN ('scheduled', 'cancelled', 'rescheduled', 'completed'))
);

CREATE UNIQUE INDEX IF NOT EXISTS uq_calendar_meetings_event_current
    ON calendar_meetings(user_id, google_event_id) WHERE status <> 'rescheduled';
CREATE UNIQUE INDEX IF NOT EXISTS uq_calendar_meetings_lead_active
    ON calendar_meetings(lead_analytics_id) WHERE status = 'scheduled';

CREATE INDEX IF NOT EXISTS idx_calendar_meetings_user ON calendar_meetings(user_id);
CREATE INDEX IF NOT EXISTS idx_calendar_meetings_lead_analytics ON calendar_meetings(lead_analytics_id);
CREATE INDEX IF NOT EXISTS idx_calendar_meetings_call ON calendar_meetings(call_id);
CREATE INDEX IF NOT EXISTS idx_calendar_meetings_contact ON calendar_meetings(contact_id);
CREATE INDEX IF NOT EXISTS idx_calendar_meetings_status ON calendar_meetings(status) WHERE status = 'scheduled';
CREATE INDEX IF NOT EXISTS idx_calendar_meetings_start_time ON calendar_meetings(meeting_start_time);
CREATE INDEX IF NOT EXISTS idx_calendar_meetings_google_event ON calendar_meetings(google_event_id);
CREATE INDEX IF NOT EXISTS idx_calendar_meetings_user_start ON calendar_meetings(user_id, meeting_start_time);

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'update_calendar_meetings_updated_at') THEN
        CREATE TRIGGER update_calendar_meetings_updated_at
            BEFORE UPDATE ON calendar_meetings
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
    END IF;
END
$$;

COMMENT ON TABLE calendar_meetings IS 'Tracks Google Calendar meetings scheduled from AI call analysis';
COMMENT ON COLUMN calendar_meetings.google_event_id IS 'Google Calendar event ID for API operations (update, cancel); derived from the lead and its booking generation';
COMMENT ON COLUMN calendar_meetings.status IS 'scheduled: active meeting, cancelled: user cancelled, rescheduled: moved to new time (see the row linked to it), completed: meeting happened';
COMMENT ON COLUMN calendar_meetings.rescheduled_from_meeting_id IS 'If this is a rescheduled meeting, links to original meeting record';
COMMENT ON COLUMN users.google_access_token IS 'Sealed: v<key version>:<base64 nonce+ciphertext>, bound to users.id';
COMMENT ON COLUMN users.google_refresh_token IS 'Sealed: v<key version>:<base64 nonce+ciphertext>, bound to users.id';

-- Users whose revoked grant still needs its "calendar disconnected" mail: the
-- scheduler's sweep publishes from here (an outbox), so a crash between the
-- disconnect and the publish cannot lose the mail.
CREATE INDEX IF NOT EXISTS idx_users_disconnect_unnotified ON users(google_disconnected_at)
    WHERE google_disconnected_at IS NOT NULL AND google_disconnect_notified_at IS NULL;
