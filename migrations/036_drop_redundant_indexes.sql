-- Drop two of the plan's indexes on calendar_meetings that only cost.
--
-- idx_calendar_meetings_status, on (status) WHERE status = 'scheduled':
-- every entry has the same key, so it can only answer "all scheduled
-- meetings of everyone", which no query here asks (reminders have
-- idx_calendar_meetings_reminder_due, a user's list the user indexes).
-- On a table not yet analyzed its cost ties with the partial unique index
-- on lead_analytics_id, so a statement looking for a lead's active meeting
-- could be planned over it, and a connection that cached that plan read
-- every scheduled meeting for each lead (tests/bench: 1,180 buffers a
-- lookup instead of 11).
--
-- idx_calendar_meetings_user, on (user_id): idx_calendar_meetings_user_start
-- on (user_id, meeting_start_time) answers every lookup by user_id, the
-- cascade when a user is deleted included. One index insert fewer per
-- booking (inserts of a meeting row, side by side: about 4% more per second).

DROP INDEX IF EXISTS idx_calendar_meetings_status;
DROP INDEX IF EXISTS idx_calendar_meetings_user;
