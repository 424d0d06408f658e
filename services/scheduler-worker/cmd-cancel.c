/*
 * cmd-cancel: cancel a booked meeting (command.h).
 *
 * The event is deleted at Google (an event already deleted there counts as
 * deleted), then the row is marked cancelled, its sync hold let go
 * (command.c) and the reply stored in one statement.
 */
#include <stdlib.h>

#include "command.h"
#include "db.h"
#include "google.h"
#include "log.h"
#include "metrics.h"
#include "scheduler.h"

/* The reply is stored with the change, in the shape command_reply_new() starts (command.c says why SQL). */
static const char cmd_cancel_sql[] =
	"WITH upd AS (UPDATE calendar_meetings SET status = 'cancelled', cancellation_reason = $3,"
	"  ical_sequence = ical_sequence + 1, change_source = 'platform', sync_hold_until = NULL"
	"  WHERE id = $1 AND user_id = $2 AND status = 'scheduled' RETURNING *),"
	" cmd AS (INSERT INTO calendar_commands (command_id, user_id, command, reply)"
	"  SELECT $4::uuid, $2, 'cancel', jsonb_build_object('ok', true, 'command_id', $4::text,"
	"  'meeting', calendar_meeting_json(upd::calendar_meetings)) FROM upd)"
	" SELECT calendar_meeting_json(upd::calendar_meetings)::text, upd.id, upd.ical_sequence FROM upd";

static void cmd_cancel_commit(struct command_job *job, const cJSON *google)
{
	const char *params[] = { job->cmd.meeting_id, job->cmd.user_id, job->cmd.reason, job->cmd.command_id };

	(void)google;
	db_query(job->s->env.db, cmd_cancel_sql, 4, params, command_on_committed, job);
}

static void cmd_cancel_committed(struct command_job *job, const struct db_result *r)
{
	(void)r;
	metric_inc(job->s->meetings_cancelled);
	log_info("meeting cancelled", LOG_STR("meeting", job->result_meeting_id),
		 LOG_STR("command_id", job->cmd.command_id));
}

static void cmd_cancel_on_google(const struct google_result *r, void *arg)
{
	struct command_job *job = arg;

	/* Deleted at Google already (by hand, or by an attempt that died before its commit): only the row is left. */
	if (r->outcome == GOOGLE_GONE || r->outcome == GOOGLE_NOT_FOUND) {
		if (command_released(job))
			return;
		log_info("the event was already deleted at Google", LOG_STR("event", job->event_id));
		cmd_cancel_commit(job, r->json);
		return;
	}
	command_on_google(r, arg);
}

static void cmd_cancel_call_google(void *arg)
{
	struct command_job *job = arg;

	google_event_delete(job->s->google, job->access_token, job->calendar_id, job->event_id, "sendUpdates=all",
			    cmd_cancel_on_google, job);
}

static void cmd_cancel_with_token(struct command_job *job)
{
	booking_rate_limited(job->s, job->cmd.user_id, cmd_cancel_call_google, job);
}

static void cmd_cancel_loaded(struct command_job *job, long long now)
{
	(void)now;
	command_get_token(job, false);
}

const struct command_entry cmd_cancel_entry = {
	.name = "cancel",
	.mail_kind = "cancelled",
	.stored = true,
	.start = command_load_meeting,
	.loaded = cmd_cancel_loaded,
	.with_token = cmd_cancel_with_token,
	.commit = cmd_cancel_commit,
	.committed = cmd_cancel_committed,
};
