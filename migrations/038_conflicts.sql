-- Conflict-aware booking (docs/booking.md, "Conflicts").
--
-- has_conflict: NULL when the rep's calendar was not checked (a booking
-- made before this migration, a calendar Google could not report on, or a
-- grant without the calendar.freebusy scope), TRUE when the meeting was
-- booked over busy time (CONFLICT_POLICY=book, or a person chose to),
-- FALSE when the slot was free. conflict_detail says which busy spans, or
-- why the check could not be made.
ALTER TABLE calendar_meetings ADD COLUMN IF NOT EXISTS has_conflict BOOLEAN;
ALTER TABLE calendar_meetings ADD COLUMN IF NOT EXISTS conflict_detail TEXT;

-- A lead skipped for a conflict keeps what the owner's mail shows: the
-- requested slot and the busy spans in it ([{start, end}], RFC 3339).
ALTER TABLE calendar_booking_outcomes ADD COLUMN IF NOT EXISTS requested_start TIMESTAMPTZ;
ALTER TABLE calendar_booking_outcomes ADD COLUMN IF NOT EXISTS requested_end TIMESTAMPTZ;
ALTER TABLE calendar_booking_outcomes ADD COLUMN IF NOT EXISTS busy JSONB;

ALTER TABLE calendar_booking_outcomes DROP CONSTRAINT IF EXISTS calendar_booking_outcomes_reason_check;
ALTER TABLE calendar_booking_outcomes ADD CONSTRAINT calendar_booking_outcomes_reason_check
    CHECK (reason IS NULL OR reason IN ('no_datetime', 'bad_datetime', 'past_datetime', 'no_email',
        'not_connected', 'not_individual', 'google_rejected', 'retries_exhausted',
        'grant_revoked', 'unknown_lead', 'conflict'));

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
        'created_at', to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'updated_at', to_char(m.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    );
END
$$;
