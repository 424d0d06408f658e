-- calendar_meeting_json() as PL/pgSQL instead of SQL.
--
-- A SQL function this simple is inlined into every statement that calls it,
-- so its 27-pair jsonb_build_object became part of the booking commit's
-- plan, and PostgreSQL kept planning that statement afresh (its plan cache
-- chose custom plans for it, also once lib/db prepared it). tests/bench
-- found the server's CPU, mostly planning, to bound the pipeline. PL/pgSQL
-- keeps the function's own plan for the session: side by side, 5,000
-- bookings at L=100 went from 672-785 to 746-898 meetings/s. The price is a
-- function call per row where a list is built (GET /api/calendar/meetings,
-- 20 rows: about half the requests per second under wrk), a read path far
-- from its limits. The JSON it returns is unchanged.

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
        'created_at', to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'updated_at', to_char(m.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    );
END
$$;
