-- Two-way sync: the platform follows what the rep and the lead do in Google
-- Calendar (docs/sync.md).

-- The push channels the scheduler opens on each connected user's calendar
-- (events.watch). Google offers no way to list a project's channels, so this
-- table is the only record of them. The token Google echoes in every push is
-- kept only as its SHA-256: the gateway compares hashes in constant time, and
-- a reader of the database cannot forge a notification. status: opening (the
-- row is written before events.watch is called, so a crash leaves a trace),
-- live, stopped (by renewal, disconnect or expiry; stop_reason says which),
-- failed (Google refused it; failure_reason says why, and it is not retried
-- until the address or the grant changes).
CREATE TABLE IF NOT EXISTS calendar_watch_channels (
    id              UUID PRIMARY KEY,
    user_id         UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    calendar_id     VARCHAR(255) NOT NULL,
    address         TEXT NOT NULL,
    token_hash      BYTEA NOT NULL,
    resource_id     VARCHAR(255),
    expiration      TIMESTAMPTZ,
    status          VARCHAR(20) NOT NULL DEFAULT 'opening'
                    CHECK (status IN ('opening', 'live', 'stopped', 'failed')),
    stop_reason     VARCHAR(50),
    failure_reason  TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    opened_at       TIMESTAMPTZ,
    stopped_at      TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_calendar_watch_channels_user ON calendar_watch_channels(user_id);
CREATE INDEX IF NOT EXISTS idx_calendar_watch_channels_live ON calendar_watch_channels(expiration)
    WHERE status IN ('opening', 'live');

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'update_calendar_watch_channels_updated_at') THEN
        CREATE TRIGGER update_calendar_watch_channels_updated_at BEFORE UPDATE ON calendar_watch_channels
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
    END IF;
END
$$;

-- Per user: the sync token of the last complete sync (NULL: the next sync is
-- a full one), when it completed, when a sync was last asked for (a push, a
-- connect, an operator), and the claims that keep one scheduler at a time on
-- a user's sync and on a user's channels however many run.
ALTER TABLE users
    ADD COLUMN IF NOT EXISTS google_sync_token            TEXT,
    ADD COLUMN IF NOT EXISTS google_synced_at             TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS google_sync_requested_at     TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS google_sync_claimed_until    TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS google_channel_claimed_until TIMESTAMPTZ;

-- attendee_response_status: the lead's answer to the invitation as Google
-- shows it (NULL until the first sync sees the event).
-- attendee_response_changes counts its changes, so each decline has its own
-- mail id. change_source: who made the change that created or ended the
-- row. sync_hold_until: a platform command is changing this meeting at
-- Google; a sync that meets it waits rather than taking the command's own
-- write for the rep's.
ALTER TABLE calendar_meetings
    ADD COLUMN IF NOT EXISTS attendee_response_status VARCHAR(20)
        CHECK (attendee_response_status IN ('needsAction', 'accepted', 'declined', 'tentative')),
    ADD COLUMN IF NOT EXISTS attendee_response_changes INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS change_source VARCHAR(10) NOT NULL DEFAULT 'platform'
        CHECK (change_source IN ('platform', 'google')),
    ADD COLUMN IF NOT EXISTS sync_hold_until TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS sync_mail_pending VARCHAR(20)
        CHECK (sync_mail_pending IN ('rescheduled', 'cancelled', 'declined'));
CREATE INDEX IF NOT EXISTS idx_calendar_meetings_sync_mail ON calendar_meetings(user_id)
    WHERE sync_mail_pending IS NOT NULL;

CREATE OR REPLACE FUNCTION calendar_meeting_json(m calendar_meetings) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN jsonb_build_object(
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
        'has_conflict', m.has_conflict,
        'conflict_detail', m.conflict_detail,
        'attendee_response_status', m.attendee_response_status,
        'change_source', m.change_source,
        'created_at', to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'updated_at', to_char(m.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    );
END
$$;
