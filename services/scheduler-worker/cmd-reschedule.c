/*
 * cmd-reschedule: move a booked meeting to a new time (command.h).
 *
 * The new slot is checked against the rep's calendar (the meeting's own
 * current slot never counts), the event is moved at Google, then one
 * statement marks the old row rescheduled, inserts the new one, points the
 * lead's outcome at it and stores the reply. That statement also lets go of
 * the meeting's sync hold (command.c) and carries the lead's answer to the
 * invitation over, which Google keeps on the moved event: the sync that
 * sees the move come back finds nothing new (syncapply.c).
 */
#include <stdlib.h>

#include "busy.h"
#include "command.h"
#include "conflict.h"
#include "datetime.h"
#include "db.h"
#include "calevent.h"
#include "google.h"
#include "log.h"
#include "metrics.h"
#include "scheduler.h"
#include "xmalloc.h"

/* Always version 1: Google drops conference data from any write made without it. */
#define CMD_RESCHEDULE_QUERY "sendUpdates=all&conferenceDataVersion=1"

/* The reply is stored with the change, in the shape command_reply_new() starts (command.c says why SQL). */
static const char cmd_reschedule_sql[] =
	"WITH old AS (UPDATE calendar_meetings SET status = 'rescheduled', change_source = 'platform',"
	"  sync_hold_until = NULL"
	"  WHERE id = $1 AND user_id = $2 AND status = 'scheduled' RETURNING *),"
	" ins AS (INSERT INTO calendar_meetings (user_id, lead_analytics_id, call_id, contact_id, google_event_id,"
	"  google_calendar_id, meeting_title, meeting_description, attendee_email, attendee_name,"
	"  meeting_start_time, meeting_end_time, meeting_duration_minutes, timezone, status,"
	"  rescheduled_from_meeting_id, google_api_response, meeting_metadata, created_by, booking_generation,"
	"  ical_sequence, meet_link, html_link, has_conflict, conflict_detail, attendee_response_status)"
	"  SELECT user_id, lead_analytics_id, call_id, contact_id, google_event_id, google_calendar_id,"
	"  meeting_title, meeting_description, attendee_email, attendee_name, $3::timestamptz, $4::timestamptz,"
	"  meeting_duration_minutes, $5, 'scheduled', id, $6::jsonb, meeting_metadata, created_by,"
	"  booking_generation, ical_sequence + 1, COALESCE($7, meet_link), COALESCE($8, html_link),"
	"  $10::boolean, $11, attendee_response_status FROM old"
	"  RETURNING *),"
	" outcome AS (UPDATE calendar_booking_outcomes o SET meeting_id = ins.id FROM ins"
	"  WHERE o.lead_analytics_id = ins.lead_analytics_id AND o.user_id = ins.user_id),"
	" cmd AS (INSERT INTO calendar_commands (command_id, user_id, command, reply)"
	"  SELECT $9::uuid, $2, 'reschedule', jsonb_build_object('ok', true, 'command_id', $9::text,"
	"  'meeting', calendar_meeting_json(ins::calendar_meetings),"
	"  'previous', calendar_meeting_json(old::calendar_meetings)) FROM ins, old)"
	" SELECT calendar_meeting_json(ins::calendar_meetings)::text, ins.id, ins.ical_sequence,"
	"  calendar_meeting_json(old::calendar_meetings)::text, old.id FROM ins, old";

static void cmd_reschedule_commit(struct command_job *job, const cJSON *google)
{
	char start[40], end[40];
	char *response = cJSON_PrintUnformatted(google);
	const char *meet = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(google, "hangoutLink"));
	const char *html = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(google, "htmlLink"));
	const char *params[11];

	datetime_format(job->when.epoch_s, job->when.offset_s, start, sizeof(start));
	datetime_format(job->when.epoch_s + (int64_t)job->duration_minutes * 60, job->when.offset_s, end,
			sizeof(end));
	params[0] = job->cmd.meeting_id;
	params[1] = job->cmd.user_id;
	params[2] = start;
	params[3] = end;
	params[4] = job->zone;
	params[5] = response;
	params[6] = meet;
	params[7] = html;
	params[8] = job->cmd.command_id;
	params[9] = job->has_conflict;
	params[10] = job->conflict_detail;
	db_query(job->s->env.db, cmd_reschedule_sql, 11, params, command_on_committed, job);
	cJSON_free(response);
}

static void cmd_reschedule_committed(struct command_job *job, const struct db_result *r)
{
	job->previous_meeting_id = xstrdup(db_value(r, 0, CC_PREVIOUS));
	command_reply_add_json(job->reply, "previous", db_value(r, 0, CC_PREVIOUS_JSON));
	metric_inc(job->s->meetings_rescheduled);
	log_info("meeting rescheduled", LOG_STR("meeting", job->result_meeting_id),
		 LOG_STR("previous", job->previous_meeting_id), LOG_STR("command_id", job->cmd.command_id));
}

static void cmd_reschedule_call_google(void *arg)
{
	struct command_job *job = arg;
	struct calevent_spec spec = { .start_s = job->when.epoch_s, .offset_s = job->when.offset_s,
				   .duration_minutes = job->duration_minutes, .time_zone = job->zone };
	cJSON *patch = calevent_build_move(&spec);

	google_event_patch(job->s->google, job->access_token, job->calendar_id, job->event_id, patch,
			   CMD_RESCHEDULE_QUERY, command_on_google, job);
	cJSON_Delete(patch);
}

/*
 * The event already sits in the slot asked for: an earlier attempt of this
 * very command moved it at Google and died before its commit, and the busy
 * time the check found is the event itself. That attempt was checked (or
 * allowed) before it moved anything, so the move goes on to its commit; the
 * patch is sent again, which changes nothing at Google. Anything else (the
 * event elsewhere, or unreadable) is the refusal the check found.
 */
static void cmd_reschedule_on_event(const struct google_result *r, void *arg)
{
	struct command_job *job = arg;
	int64_t start = 0, end = 0;
	cJSON *busy;

	if (command_released(job))
		return;
	if (r->outcome == GOOGLE_OK &&
	    calevent_read_when(cJSON_GetObjectItemCaseSensitive(r->json, "start"), job->zone, &start) == 0 &&
	    calevent_read_when(cJSON_GetObjectItemCaseSensitive(r->json, "end"), job->zone, &end) == 0 &&
	    start == job->when.epoch_s && end == job->when.epoch_s + (int64_t)job->duration_minutes * 60) {
		log_info("the event is already in the slot asked for (an earlier attempt moved it); committing",
			 LOG_STR("command_id", job->cmd.command_id), LOG_STR("event", job->event_id));
		cJSON_Delete(job->busy);
		job->busy = NULL;
		job->conflict_detail = xstrdup("not checked again: an earlier attempt of this change moved the event");
		job->checked = true;
		booking_rate_limited(job->s, job->cmd.user_id, cmd_reschedule_call_google, job);
		return;
	}
	busy = job->busy;
	job->busy = NULL;
	command_fail_busy(job, "conflict", "the calendar is busy at that time; choose another or move it anyway", busy);
}

/* Move over busy time only when the person said so; the new row records what the check found. */
static void cmd_reschedule_checked(struct command_job *job, const struct conflict_result *r)
{
	switch (r->status) {
	case CONFLICT_FREE:
		job->has_conflict = "f";
		break;
	case CONFLICT_UNCHECKED:
		job->conflict_detail = xstrdup(r->detail);
		break;
	case CONFLICT_BUSY:
		if (!job->cmd.allow_conflict) {
			job->busy = busy_to_json(r->busy, job->zone);
			google_event_get(job->s->google, job->access_token, job->calendar_id, job->event_id,
					 cmd_reschedule_on_event, job);
			return;
		}
		job->has_conflict = "t";
		job->conflict_detail = busy_to_text(r->busy, job->zone, 5);
		break;
	case CONFLICT_UNAUTHORIZED:
	case CONFLICT_TRANSIENT:
		command_retry_or_give_up(job, r->reason ? r->reason : "Google unavailable");
		return;
	}
	job->checked = true;
	booking_rate_limited(job->s, job->cmd.user_id, cmd_reschedule_call_google, job);
}

static void cmd_reschedule_with_token(struct command_job *job)
{
	struct conflict_slot slot = {
		.purpose = "booking",
		.start_s = job->when.epoch_s,
		.end_s = job->when.epoch_s + (int64_t)job->duration_minutes * 60,
		.own_start_s = job->own_start_s,
		.own_end_s = job->own_end_s,
	};

	if (job->checked) {
		booking_rate_limited(job->s, job->cmd.user_id, cmd_reschedule_call_google, job);
		return;
	}
	command_check(job, &slot);
}

static void cmd_reschedule_loaded(struct command_job *job, long long now)
{
	const char *err = command_parse_time(job, job->cmd.date_time, job->zone, now);

	if (err != NULL) {
		char *msg = xasprintf("newDateTime: %s", err);

		command_fail(job, "invalid", msg);
		free(msg);
		return;
	}
	command_get_token(job, false);
}

const struct command_entry cmd_reschedule_entry = {
	.name = "reschedule",
	.mail_kind = "rescheduled",
	.stored = true,
	.start = command_load_meeting,
	.loaded = cmd_reschedule_loaded,
	.with_token = cmd_reschedule_with_token,
	.checked = cmd_reschedule_checked,
	.commit = cmd_reschedule_commit,
	.committed = cmd_reschedule_committed,
};
