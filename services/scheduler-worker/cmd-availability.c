/*
 * cmd-availability: the rep's busy and free time over a range (command.h).
 *
 * A read: never stored, never retried once Google answers badly (the
 * gateway waits seconds, not the retry tiers), answered at once.
 */
#include <stdlib.h>

#include "busy.h"
#include "command.h"
#include "conflict.h"
#include "db.h"
#include "log.h"
#include "scheduler.h"
#include "tokens.h"
#include "xmalloc.h"

/* Availability reads no meeting and no lead: the user's calendar, zone and tokens. */
static const char cmd_availability_user_sql[] =
	"SELECT COALESCE(NULLIF(u.google_calendar_id, ''), 'primary'), COALESCE(u.google_calendar_timezone, $2), "
	TOKENS_COLUMNS " FROM users u WHERE u.id = $1";

enum { UC_CALENDAR, UC_ZONE, UC_TOKENS };

/* The rep's busy time over the asked range and the free spans long enough for a meeting. */
static void cmd_availability_answer(struct command_job *job, const struct conflict_result *r)
{
	struct busy_list free_time = { 0 };
	const struct busy_list none = { 0 };
	const struct busy_list *busy = r->status == CONFLICT_BUSY ? r->busy : &none;
	cJSON *reply, *a;

	busy_free_gaps(busy, job->cmd.from_s, job->cmd.to_s, (int64_t)job->cmd.duration_minutes * 60, &free_time);
	reply = command_reply_new(job, true);
	a = cJSON_AddObjectToObject(reply, "availability");
	cJSON_AddStringToObject(a, "time_zone", job->zone);
	cJSON_AddItemToObject(a, "busy", busy_to_json(busy, job->zone));
	cJSON_AddItemToObject(a, "free", busy_to_json(&free_time, job->zone));
	command_send_reply(job, reply);
	cJSON_Delete(reply);
	busy_clear(&free_time);
	if (command_released(job))
		return;
	mq_ack(job->s->env.consumer, job->d->token);
	command_job_free(job);
}

static void cmd_availability_checked(struct command_job *job, const struct conflict_result *r)
{
	if (r->status == CONFLICT_UNAUTHORIZED || r->status == CONFLICT_TRANSIENT) {
		/* A read is worth nothing late: the gateway waits seconds, not the retry tiers. */
		command_fail(job, "unavailable", "Google Calendar is unavailable; try again");
		return;
	}
	if (r->status == CONFLICT_UNCHECKED) {
		command_fail(job, "google_rejected", r->detail);
		return;
	}
	cmd_availability_answer(job, r);
}

static void cmd_availability_with_token(struct command_job *job)
{
	struct conflict_slot slot = { .purpose = "availability", .start_s = job->cmd.from_s, .end_s = job->cmd.to_s };

	command_check(job, &slot);
}

static void cmd_availability_on_user(const struct db_result *r, void *arg)
{
	struct command_job *job = arg;
	struct tokens_stored tokens;

	if (command_released(job))
		return;
	if (r->status != DB_OK) {
		command_fail(job, "unavailable", "the database is unavailable; try again");
		return;
	}
	if (db_ntuples(r) > 0)
		tokens_stored_from(r, 0, UC_TOKENS, &tokens);
	if (db_ntuples(r) == 0 || !tokens_stored_connected(&tokens)) {
		command_fail(job, "not_connected", "Google Calendar is not connected; connect it first");
		return;
	}
	job->calendar_id = xstrdup(db_value(r, 0, UC_CALENDAR));
	job->zone = xstrdup(db_value(r, 0, UC_ZONE));
	tokens_get_stored(job->s->tokens, job->cmd.user_id, &tokens, command_on_token, job);
}

static void cmd_availability_start(struct command_job *job)
{
	const char *params[] = { job->cmd.user_id, job->s->env.cfg->default_timezone };

	db_query(job->s->env.db, cmd_availability_user_sql, 2, params, cmd_availability_on_user, job);
}

const struct command_entry cmd_availability_entry = {
	.name = "availability",
	.start = cmd_availability_start,
	.with_token = cmd_availability_with_token,
	.checked = cmd_availability_checked,
};
