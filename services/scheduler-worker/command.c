/*
 * command: the gateway's create, reschedule, cancel and availability commands.
 *
 * Each command arrives with reply_to and correlation_id (RPC over AMQP) and
 * is applied at most once: the change and the reply are committed in one
 * statement, keyed by the command id, and a redelivered command gets the
 * stored reply (and its mail job again, which the mailer de-duplicates).
 * Errors that change nothing (not found, conflict, bad input) are answered
 * at once and not stored. Transient failures go through the retry tiers like
 * leads; the gateway has meanwhile answered 202 and the reply, when it comes,
 * is dropped if nobody waits for it.
 *
 * A command is taken only from a broker user allowed to send commands: the
 * gateway's (COMMAND_AMQP_USERS) or the scheduler's own (the copies its retry
 * tiers hand back). The user-id property says who published it and RabbitMQ
 * refuses a user-id other than the publisher's login, so another service's
 * credentials, or the platform's, cannot forge a command. Anything else is
 * dead-lettered unanswered as untrusted_publisher; its reply_to is not
 * used, so it cannot have the scheduler publish into a queue of its
 * choosing either. Then every field is checked again (message.c).
 *
 * Each command is one cmd-<name>.c; what they share is here (command.h).
 */
#include "command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cfg.h"
#include "conflict.h"
#include "db.h"
#include "google.h"
#include "log.h"
#include "metrics.h"
#include "retry.h"
#include "scheduler.h"
#include "tokens.h"
#include "xmalloc.h"

static const char command_stored_sql[] =
	"SELECT command, reply::text FROM calendar_commands WHERE command_id = $1 AND user_id = $2";

enum { SC_COMMAND, SC_REPLY };

/*
 * A scheduled meeting is held from the sync (sync_hold_until) while the
 * command changes it at Google: a sync meeting the command's own write
 * before its commit would take it for the rep's. The commit (or a refusal,
 * command_fail_busy()) lets go; a command that dies holds it two minutes.
 */
static const char command_meeting_sql[] =
	"WITH hold AS (UPDATE calendar_meetings SET sync_hold_until = now() + interval '2 minutes'"
	"  WHERE id = $1 AND user_id = $2 AND status = 'scheduled' RETURNING id)"
	" SELECT calendar_meeting_json(m)::text, m.status, m.google_event_id, m.google_calendar_id,"
	" m.meeting_duration_minutes, COALESCE(m.timezone, u.google_calendar_timezone, $3),"
	" m.lead_analytics_id, m.ical_sequence, EXTRACT(EPOCH FROM now())::bigint,"
	" EXTRACT(EPOCH FROM m.meeting_start_time)::bigint, EXTRACT(EPOCH FROM m.meeting_end_time)::bigint"
	" FROM calendar_meetings m JOIN users u ON u.id = m.user_id WHERE m.id = $1 AND m.user_id = $2";

static const char command_unhold_sql[] =
	"UPDATE calendar_meetings SET sync_hold_until = NULL"
	" WHERE id = $1 AND user_id = $2 AND sync_hold_until IS NOT NULL";

enum {
	MC_JSON, MC_STATUS, MC_EVENT, MC_CALENDAR, MC_DURATION, MC_ZONE, MC_LEAD, MC_SEQUENCE, MC_NOW, MC_START,
	MC_END,
};

void command_job_free(struct command_job *job)
{
	char **strings[] = {
		&job->calendar_id, &job->zone, &job->event_id, &job->conflict_detail, &job->call_id,
		&job->contact_id, &job->title, &job->description, &job->email, &job->attendee_name, &job->metadata,
		&job->result_meeting_id, &job->previous_meeting_id,
	};

	scheduler_job_done(job->s, job->d);
	message_command_release(&job->cmd);
	for (size_t i = 0; i < sizeof(strings) / sizeof(*strings); i++)
		free(*strings[i]);
	xfree_secret(job->access_token);
	cJSON_Delete(job->reply);
	cJSON_Delete(job->busy);
	free(job);
}

/* Shutting down: the job ends unsettled and the broker redelivers the command (lib/worker.h). */
bool command_released(struct command_job *job)
{
	if (!scheduler_closing(job->s))
		return false;
	log_info("shutting down; the command goes back to the broker", LOG_STR("command_id", job->cmd.command_id));
	command_job_free(job);
	return true;
}

static void command_on_settled(bool settled, void *arg)
{
	(void)settled;
	command_job_free(arg);
}

/*
 * The stored copy of a change's reply (calendar_commands.reply) is built in
 * SQL, with jsonb_build_object around calendar_meeting_json(), by the
 * statement that makes the change: stored there, it commits with the change
 * or not at all, and calendar_meeting_json() is the one place a meeting row
 * becomes JSON. It holds the members command_reply_new() and the commands
 * add; a replay reads it back and sends it through these functions too.
 */
cJSON *command_reply_new(const struct command_job *job, bool ok)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddBoolToObject(r, "ok", ok);
	cJSON_AddStringToObject(r, "command_id", job->cmd.command_id ? job->cmd.command_id : "");
	return r;
}

void command_reply_add_json(cJSON *reply, const char *name, const char *json_text)
{
	cJSON *v = json_text != NULL ? cJSON_Parse(json_text) : NULL;

	cJSON_AddItemToObject(reply, name, v != NULL ? v : cJSON_CreateNull());
}

void command_send_reply(struct command_job *job, const cJSON *reply)
{
	struct mq_message m = { 0 };
	char *body;

	if (job->d->msg.reply_to == NULL || *job->d->msg.reply_to == '\0')
		return;
	body = cJSON_PrintUnformatted(reply);
	m.exchange = "";
	m.routing_key = job->d->msg.reply_to;
	m.body = body;
	m.body_len = strlen(body);
	m.content_type = "application/json";
	m.correlation_id = job->cmd.command_id ? job->cmd.command_id : job->d->msg.correlation_id;
	m.type = "meeting.command-reply";
	m.transient = true;
	mq_publish(job->s->env.publisher, &m, NULL, NULL);
	cJSON_free(body);
}

/* A refusal: ok false, error {code, message}, and busy (taken over) when not NULL. */
static void command_send_error(struct command_job *job, const char *code, const char *message, cJSON *busy)
{
	cJSON *r = command_reply_new(job, false);
	cJSON *e = cJSON_AddObjectToObject(r, "error");

	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	if (busy != NULL)
		cJSON_AddItemToObject(r, "busy", busy);
	command_send_reply(job, r);
	cJSON_Delete(r);
}

static void command_on_unheld(const struct db_result *r, void *arg)
{
	(void)arg;
	if (r->status != DB_OK)
		log_warn("could not release a meeting's sync hold; it runs out by itself", LOG_STR("error", r->error));
}

void command_fail_busy(struct command_job *job, const char *code, const char *message, cJSON *busy)
{
	if (command_released(job)) {
		cJSON_Delete(busy);
		return;
	}
	/* A loaded meeting (reschedule, cancel) was held for the change that is not coming. */
	if (job->event_id != NULL) {
		const char *params[] = { job->cmd.meeting_id, job->cmd.user_id };

		db_query(job->s->env.db, command_unhold_sql, 2, params, command_on_unheld, NULL);
	}
	log_info("command refused", LOG_STR("command", job->entry->name), LOG_STR("error_code", code),
		 LOG_STR("message", message), LOG_STR("command_id", job->cmd.command_id));
	command_send_error(job, code, message, busy);
	mq_ack(job->s->env.consumer, job->d->token);
	command_job_free(job);
}

void command_fail(struct command_job *job, const char *code, const char *message)
{
	command_fail_busy(job, code, message, NULL);
}

void command_retry_or_give_up(struct command_job *job, const char *why)
{
	struct scheduler *s = job->s;

	if (command_released(job))
		return;
	if (retry_exhausted(&s->env.retry, job->d)) {
		command_send_error(job, "unavailable",
				   "Google Calendar or the database stayed unavailable; try again later", NULL);
		retry_dead_letter(&s->env.retry, job->d, "retries_exhausted", why, command_on_settled, job);
		return;
	}
	log_info("command will be retried", LOG_STR("command", job->entry->name), LOG_STR("why", why),
		 LOG_STR("command_id", job->cmd.command_id));
	retry_later(&s->env.retry, job->d, command_on_settled, job);
}

static void command_on_mail(enum mq_confirm outcome, void *arg)
{
	struct command_job *job = arg;

	if (command_released(job))
		return;
	if (outcome != MQ_CONFIRM_ACK) {
		/* The change and its reply are stored: back through a retry tier, it only repeats the mail. */
		log_warn("mail job not confirmed; the command will be retried", LOG_STR("command_id", job->cmd.command_id));
		retry_later(&job->s->env.retry, job->d, command_on_settled, job);
		return;
	}
	mq_ack(job->s->env.consumer, job->d->token);
	command_job_free(job);
}

void command_succeeded(struct command_job *job)
{
	struct mailjob mail = {
		.kind = job->entry->mail_kind,
		.user_id = job->cmd.user_id,
		.meeting_id = job->result_meeting_id,
		.previous_meeting_id = job->previous_meeting_id,
		.sequence = job->sequence,
		.trace = job->cmd.command_id,
	};

	if (command_released(job))
		return;
	command_send_reply(job, job->reply);
	mailjob_publish(job->s, &mail, command_on_mail, job);
}

/* A stored reply: the command ran before. Repeat its answer and its mail. */
static void command_replay(struct command_job *job, const char *reply_text)
{
	cJSON *stored;
	const cJSON *m, *p;
	const char *id, *prev;

	if (command_released(job))
		return;
	stored = cJSON_Parse(reply_text);
	m = cJSON_GetObjectItemCaseSensitive(stored, "meeting");
	p = cJSON_GetObjectItemCaseSensitive(stored, "previous");
	id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "id"));
	prev = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "id"));
	log_info("command already applied; repeating its reply", LOG_STR("command_id", job->cmd.command_id));
	job->result_meeting_id = id ? xstrdup(id) : NULL;
	job->previous_meeting_id = prev ? xstrdup(prev) : NULL;
	job->sequence = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, "ical_sequence"));
	job->reply = command_reply_new(job, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(stored, "ok")));
	if (m != NULL)
		cJSON_AddItemToObject(job->reply, "meeting", cJSON_DetachItemViaPointer(stored, (cJSON *)m));
	if (p != NULL)
		cJSON_AddItemToObject(job->reply, "previous", cJSON_DetachItemViaPointer(stored, (cJSON *)p));
	cJSON_Delete(stored);
	if (job->result_meeting_id == NULL) {
		command_send_reply(job, job->reply);
		mq_ack(job->s->env.consumer, job->d->token);
		command_job_free(job);
		return;
	}
	command_succeeded(job);
}

const char *command_parse_time(struct command_job *job, const char *text, const char *zone, long long now)
{
	if (text == NULL || *text == '\0')
		return "a date and time is required";
	if (datetime_parse(text, strlen(text), &job->when) < 0)
		return "the date and time must be ISO 8601, e.g. 2025-09-18T17:00:00+05:30";
	if (datetime_resolve(&job->when, zone) < 0)
		return "the calendar's time zone is unknown";
	if (job->when.epoch_s <= now)
		return "the date and time is in the past";
	return NULL;
}

void command_on_token(enum tokens_status status, const char *token, void *arg)
{
	struct command_job *job = arg;

	if (command_released(job))
		return;
	switch (status) {
	case TOKENS_OK:
		xfree_secret(job->access_token);
		job->access_token = xstrdup(token);
		job->entry->with_token(job);
		return;
	case TOKENS_NOT_CONNECTED:
	case TOKENS_REVOKED:
		command_fail(job, "not_connected", "Google Calendar is not connected; reconnect it and try again");
		return;
	case TOKENS_TRANSIENT:
		command_retry_or_give_up(job, "could not obtain an access token");
		return;
	}
}

void command_get_token(struct command_job *job, bool refresh)
{
	tokens_get(job->s->tokens, job->cmd.user_id, refresh, command_on_token, job);
}

/* After a 401: force one refresh (true, the job goes on from with_token()), or false when done once already. */
static bool command_refresh(struct command_job *job)
{
	if (job->refreshed)
		return false;
	job->refreshed = true;
	command_get_token(job, true);
	return true;
}

static void command_on_checked(const struct conflict_result *r, void *arg)
{
	struct command_job *job = arg;

	if (command_released(job))
		return;
	if (r->status == CONFLICT_UNAUTHORIZED && command_refresh(job))
		return;
	job->entry->checked(job, r);
}

void command_check(struct command_job *job, struct conflict_slot *slot)
{
	slot->user_id = job->cmd.user_id;
	slot->access_token = job->access_token;
	slot->calendar_id = job->calendar_id;
	conflict_check(job->s, slot, command_on_checked, job);
}

static void command_on_meeting(const struct db_result *r, void *arg)
{
	struct command_job *job = arg;

	if (r->status != DB_OK) {
		command_retry_or_give_up(job, r->status == DB_UNAVAILABLE ? "database unavailable" : r->error);
		return;
	}
	if (db_ntuples(r) == 0) {
		command_fail(job, "not_found", "no such meeting");
		return;
	}
	if (strcmp(db_value(r, 0, MC_STATUS), "scheduled") != 0) {
		char *msg = xasprintf("the meeting is %s; only a scheduled meeting can be changed",
				      db_value(r, 0, MC_STATUS));

		command_fail(job, "conflict", msg);
		free(msg);
		return;
	}
	job->event_id = xstrdup(db_value(r, 0, MC_EVENT));
	job->calendar_id = xstrdup(db_value(r, 0, MC_CALENDAR));
	job->duration_minutes = atoi(db_value(r, 0, MC_DURATION));
	job->zone = xstrdup(db_value(r, 0, MC_ZONE));
	job->sequence = atoi(db_value(r, 0, MC_SEQUENCE));
	job->own_start_s = atoll(db_value(r, 0, MC_START));
	job->own_end_s = atoll(db_value(r, 0, MC_END));
	job->entry->loaded(job, atoll(db_value(r, 0, MC_NOW)));
}

void command_load_meeting(struct command_job *job)
{
	const char *params[] = { job->cmd.meeting_id, job->cmd.user_id, job->s->env.cfg->default_timezone };

	db_query(job->s->env.db, command_meeting_sql, 3, params, command_on_meeting, job);
}

void command_on_google(const struct google_result *r, void *arg)
{
	struct command_job *job = arg;
	char *msg;

	if (command_released(job))
		return;
	if (r->outcome == GOOGLE_UNAUTHORIZED && command_refresh(job))
		return;
	if (r->outcome == GOOGLE_OK) {
		job->entry->commit(job, r->json);
		return;
	}
	if (r->outcome == GOOGLE_TRANSIENT) {
		command_retry_or_give_up(job, r->reason ? r->reason : "Google unavailable");
		return;
	}
	msg = xasprintf("Google Calendar refused the change (%s)%s%s",
			r->reason ? r->reason : google_outcome_name(r->outcome), r->message ? ": " : "",
			r->message ? r->message : "");
	command_fail(job, "google_rejected", msg);
	free(msg);
}

void command_on_committed(const struct db_result *r, void *arg)
{
	struct command_job *job = arg;

	/* Google's part is over: the token goes now, not once the mail job is confirmed (lib/xmalloc.h). */
	xfree_secret(job->access_token);
	job->access_token = NULL;

	if (r->status == DB_UNAVAILABLE) {
		command_retry_or_give_up(job, "database unavailable");
		return;
	}
	if (r->status != DB_OK) {
		log_error("could not commit a command", LOG_STR("command_id", job->cmd.command_id),
			  LOG_STR("error", r->error));
		command_retry_or_give_up(job, r->error);
		return;
	}
	if (db_ntuples(r) == 0) {
		command_fail(job, "conflict", "the meeting was changed meanwhile; reload it");
		return;
	}
	job->reply = command_reply_new(job, true);
	command_reply_add_json(job->reply, "meeting", db_value(r, 0, CC_MEETING_JSON));
	job->result_meeting_id = xstrdup(db_value(r, 0, CC_MEETING));
	job->sequence = atoi(db_value(r, 0, CC_SEQUENCE));
	job->entry->committed(job, r);
	command_succeeded(job);
}

static void command_on_stored(const struct db_result *r, void *arg)
{
	struct command_job *job = arg;

	if (r->status != DB_OK) {
		command_retry_or_give_up(job, r->status == DB_UNAVAILABLE ? "database unavailable" : r->error);
		return;
	}
	if (db_ntuples(r) > 0) {
		command_replay(job, db_value(r, 0, SC_REPLY));
		return;
	}
	job->entry->start(job);
}

/*
 * Whether the delivery was published by a broker user that may send commands: the scheduler's own
 * (its retry copies; in a deployment where every service shares one broker user, the gateway too)
 * or one of COMMAND_AMQP_USERS. RabbitMQ has checked the user-id property against the publisher's login.
 */
static bool command_trusted(const struct scheduler *s, const struct mq_delivery *d)
{
	const char *who = d->msg.user_id;

	if (who == NULL || *who == '\0')
		return false;
	return strcmp(who, mq_user(s->env.publisher)) == 0 || cfg_list_has(s->env.cfg->command_amqp_users, who);
}

static void command_refused(struct scheduler *s, const char *reason)
{
	metric_inc(metrics_counter("scheduler_messages_refused_total",
				   "Messages the scheduler refused and dead-lettered, by message and reason.", "message",
				   "command", "reason", reason, NULL));
}

static const struct command_entry *command_entry_of(enum message_command_kind kind)
{
	switch (kind) {
	case MESSAGE_RESCHEDULE:
		return &cmd_reschedule_entry;
	case MESSAGE_CANCEL:
		return &cmd_cancel_entry;
	case MESSAGE_AVAILABILITY:
		return &cmd_availability_entry;
	case MESSAGE_CREATE:
		break;
	}
	return &cmd_create_entry;
}

void command_handle(struct scheduler *s, struct mq_delivery *d)
{
	struct command_job *job = xcalloc(1, sizeof(*job));
	const char *why = NULL;
	int rc;

	job->s = s;
	job->d = d;
	job->entry = &cmd_create_entry;
	metric_inc(s->commands);
	if (!command_trusted(s, d)) {
		char *detail = xasprintf("published by broker user '%s', which may not send meeting commands "
					 "(COMMAND_AMQP_USERS)", d->msg.user_id ? d->msg.user_id : "(none)");

		/* No reply: reply_to is the sender's word, and the sender is nobody we answer. */
		log_warn("command refused: its publisher is not a broker user allowed to send commands; if it is the "
			 "gateway, add the gateway's broker user to COMMAND_AMQP_USERS",
			 LOG_STR("publisher", d->msg.user_id ? d->msg.user_id : "(none)"),
			 LOG_STR("allowed", s->env.cfg->command_amqp_users), LOG_STR("own_user", mq_user(s->env.publisher)),
			 LOG_STR("message_id", d->msg.message_id), LOG_STR("routing_key", d->msg.routing_key));
		command_refused(s, "untrusted_publisher");
		retry_dead_letter(&s->env.retry, d, "untrusted_publisher", detail, command_on_settled, job);
		free(detail);
		return;
	}
	/* The job owns the fields from here on, also on -1: command_id answers the refusal. */
	rc = message_parse_command(d->msg.body, d->msg.body_len, &job->cmd, &why);
	job->entry = command_entry_of(job->cmd.kind);
	if (rc < 0) {
		/* Poison for the queue, but whoever sent it still deserves an answer. */
		log_warn("command refused: a field is not what the gateway sends", LOG_STR("why", why),
			 LOG_STR("command_id", job->cmd.command_id), LOG_STR("message_id", d->msg.message_id));
		command_refused(s, "malformed");
		command_send_error(job, "invalid", why, NULL);
		retry_dead_letter(&s->env.retry, d, "malformed", why, command_on_settled, job);
		return;
	}
	if (!job->entry->stored) {
		job->entry->start(job);
		return;
	}
	{
		const char *params[] = { job->cmd.command_id, job->cmd.user_id };

		db_query(s->env.db, command_stored_sql, 2, params, command_on_stored, job);
	}
}
