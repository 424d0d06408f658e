/*
 * command: the gateway's create, reschedule and cancel commands.
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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "booking.h"
#include "busy.h"
#include "conflict.h"
#include "cfg.h"
#include "datetime.h"
#include "db.h"
#include "event.h"
#include "google.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "retry.h"
#include "scheduler.h"
#include "tokens.h"
#include "xmalloc.h"

#define COMMAND_QUERY "sendUpdates=all&conferenceDataVersion=1"

static const char command_stored_sql[] =
	"SELECT command, reply::text FROM calendar_commands WHERE command_id = $1 AND user_id = $2";

static const char command_meeting_sql[] =
	"SELECT calendar_meeting_json(m)::text, m.status, m.google_event_id, m.google_calendar_id,"
	" m.meeting_duration_minutes, COALESCE(m.timezone, u.google_calendar_timezone, $3),"
	" m.lead_analytics_id, m.ical_sequence, EXTRACT(EPOCH FROM now())::bigint,"
	" EXTRACT(EPOCH FROM m.meeting_start_time)::bigint, EXTRACT(EPOCH FROM m.meeting_end_time)::bigint"
	" FROM calendar_meetings m JOIN users u ON u.id = m.user_id WHERE m.id = $1 AND m.user_id = $2";

static const char command_lead_sql[] =
	"SELECT la.call_id, la.phone_number, la.extracted_name, la.extracted_email, la.company_name,"
	" la.demo_book_datetime, la.reasoning::text, la.lead_status_tag, la.smart_notification,"
	" c.id, c.email, c.name, ca.recording_url, u.google_calendar_connected,"
	" COALESCE(u.google_calendar_id, 'primary'), COALESCE(u.google_calendar_timezone, $3),"
	" (SELECT count(*) FROM calendar_meetings m WHERE m.lead_analytics_id = la.id),"
	" EXISTS (SELECT 1 FROM calendar_meetings m WHERE m.lead_analytics_id = la.id AND m.status = 'scheduled'),"
	" EXTRACT(EPOCH FROM now())::bigint"
	" FROM lead_analytics la JOIN users u ON u.id = la.user_id"
	" LEFT JOIN LATERAL (SELECT id, email, name FROM contacts"
	"  WHERE user_id = la.user_id AND phone_number = la.phone_number"
	"  ORDER BY (email IS NULL OR email = ''), updated_at DESC NULLS LAST LIMIT 1) c ON TRUE"
	" LEFT JOIN calls ca ON ca.id = la.call_id"
	" WHERE la.id = $1 AND la.user_id = $2";

/* Availability reads no meeting and no lead: the user's calendar, zone and tokens. */
static const char command_user_sql[] =
	"SELECT COALESCE(NULLIF(u.google_calendar_id, ''), 'primary'), COALESCE(u.google_calendar_timezone, $2), "
	TOKENS_COLUMNS " FROM users u WHERE u.id = $1";

enum { UC_CALENDAR, UC_ZONE, UC_TOKENS };

enum {
	LC_CALL, LC_PHONE, LC_NAME, LC_EXTRACTED_EMAIL, LC_COMPANY, LC_DATETIME, LC_REASONING, LC_STATUS_TAG,
	LC_SUMMARY, LC_CONTACT_ID, LC_CONTACT_EMAIL, LC_CONTACT_NAME, LC_RECORDING, LC_CONNECTED, LC_CALENDAR,
	LC_ZONE, LC_MEETINGS, LC_ACTIVE, LC_NOW,
};

static const char command_reschedule_sql[] =
	"WITH old AS (UPDATE calendar_meetings SET status = 'rescheduled'"
	"  WHERE id = $1 AND user_id = $2 AND status = 'scheduled' RETURNING *),"
	" ins AS (INSERT INTO calendar_meetings (user_id, lead_analytics_id, call_id, contact_id, google_event_id,"
	"  google_calendar_id, meeting_title, meeting_description, attendee_email, attendee_name,"
	"  meeting_start_time, meeting_end_time, meeting_duration_minutes, timezone, status,"
	"  rescheduled_from_meeting_id, google_api_response, meeting_metadata, created_by, booking_generation,"
	"  ical_sequence, meet_link, html_link, has_conflict, conflict_detail)"
	"  SELECT user_id, lead_analytics_id, call_id, contact_id, google_event_id, google_calendar_id,"
	"  meeting_title, meeting_description, attendee_email, attendee_name, $3::timestamptz, $4::timestamptz,"
	"  meeting_duration_minutes, $5, 'scheduled', id, $6::jsonb, meeting_metadata, created_by,"
	"  booking_generation, ical_sequence + 1, COALESCE($7, meet_link), COALESCE($8, html_link),"
	"  $10::boolean, $11 FROM old"
	"  RETURNING *),"
	" outcome AS (UPDATE calendar_booking_outcomes o SET meeting_id = ins.id FROM ins"
	"  WHERE o.lead_analytics_id = ins.lead_analytics_id AND o.user_id = ins.user_id),"
	" cmd AS (INSERT INTO calendar_commands (command_id, user_id, command, reply)"
	"  SELECT $9::uuid, $2, 'reschedule', jsonb_build_object('ok', true, 'command_id', $9::text,"
	"  'meeting', calendar_meeting_json(ins::calendar_meetings),"
	"  'previous', calendar_meeting_json(old::calendar_meetings)) FROM ins, old)"
	" SELECT jsonb_build_object('ok', true, 'command_id', $9::text,"
	"  'meeting', calendar_meeting_json(ins::calendar_meetings),"
	"  'previous', calendar_meeting_json(old::calendar_meetings))::text, ins.id, ins.ical_sequence, old.id"
	" FROM ins, old";

static const char command_cancel_sql[] =
	"WITH upd AS (UPDATE calendar_meetings SET status = 'cancelled', cancellation_reason = $3,"
	"  ical_sequence = ical_sequence + 1 WHERE id = $1 AND user_id = $2 AND status = 'scheduled' RETURNING *),"
	" cmd AS (INSERT INTO calendar_commands (command_id, user_id, command, reply)"
	"  SELECT $4::uuid, $2, 'cancel', jsonb_build_object('ok', true, 'command_id', $4::text,"
	"  'meeting', calendar_meeting_json(upd::calendar_meetings)) FROM upd)"
	" SELECT jsonb_build_object('ok', true, 'command_id', $4::text,"
	"  'meeting', calendar_meeting_json(upd::calendar_meetings))::text, upd.id, upd.ical_sequence FROM upd";

struct command_job {
	struct scheduler *s;
	struct mq_delivery *d;
	enum message_command_kind kind;
	char *command_id, *user_id, *meeting_id, *lead_id, *date_time, *reason, *email_override, *name_override;
	/* Loaded meeting (reschedule, cancel). */
	char *event_id, *calendar_id, *zone, *access_token;
	int duration_minutes;
	struct datetime when;
	int64_t own_start_s, own_end_s;	/* reschedule: the meeting's current slot */
	bool refreshed;
	/* The conflict check (create, reschedule) or the availability read. */
	bool allow_conflict, checked;
	const char *has_conflict;	/* "t", "f", or NULL when not known */
	char *conflict_detail;
	int64_t from_s, to_s;
	int min_free_minutes;
	/* Create. */
	struct booking booking;
	char *call_id, *contact_id, *title, *description, *email, *attendee_name, *metadata;
	/* Result. */
	char *reply;
	char *result_meeting_id, *previous_meeting_id;
	int sequence;
};

static const char *const command_names[] = { "create", "reschedule", "cancel", "availability" };

static void command_job_free(struct command_job *job)
{
	char **strings[] = {
		&job->command_id, &job->user_id, &job->meeting_id, &job->lead_id, &job->date_time, &job->reason,
		&job->email_override, &job->name_override, &job->event_id, &job->calendar_id, &job->zone,
		&job->call_id, &job->contact_id, &job->title, &job->description, &job->email, &job->attendee_name,
		&job->metadata, &job->reply, &job->result_meeting_id, &job->previous_meeting_id, &job->conflict_detail,
	};

	scheduler_job_done(job->s, job->d);
	for (size_t i = 0; i < sizeof(strings) / sizeof(*strings); i++)
		free(*strings[i]);
	xfree_secret(job->access_token);
	free(job);
}

/* Shutting down: the job ends unsettled and the broker redelivers the command (lib/worker.h). */
static bool command_released(struct command_job *job)
{
	if (!scheduler_closing(job->s))
		return false;
	log_info("shutting down; the command goes back to the broker", LOG_STR("command_id", job->command_id));
	command_job_free(job);
	return true;
}

static void command_on_settled(bool settled, void *arg)
{
	(void)settled;
	command_job_free(arg);
}

/* Publish a reply to whoever is waiting; a reply nobody waits for any more is dropped by the broker. */
static void command_send_reply(struct command_job *job, const char *body)
{
	struct mq_message m = { 0 };

	if (job->d->msg.reply_to == NULL || *job->d->msg.reply_to == '\0')
		return;
	m.exchange = "";
	m.routing_key = job->d->msg.reply_to;
	m.body = body;
	m.body_len = strlen(body);
	m.content_type = "application/json";
	m.correlation_id = job->command_id ? job->command_id : job->d->msg.correlation_id;
	m.type = "meeting.command-reply";
	m.transient = true;
	mq_publish(job->s->publisher, &m, NULL, NULL);
}

/* Answer an error that changed nothing, with the busy spans that caused it (or NULL), then ack. */
static void command_fail_busy(struct command_job *job, const char *code, const char *message, cJSON *busy)
{
	cJSON *r;
	cJSON *e;
	char *text;

	if (command_released(job))
		return;
	r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 0);
	cJSON_AddStringToObject(r, "command_id", job->command_id ? job->command_id : "");
	e = cJSON_AddObjectToObject(r, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	if (busy != NULL)
		cJSON_AddItemToObject(r, "busy", busy);
	text = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	log_info("command refused", LOG_STR("command", command_names[job->kind]), LOG_STR("error_code", code),
		 LOG_STR("message", message), LOG_STR("command_id", job->command_id));
	command_send_reply(job, text);
	cJSON_free(text);
	mq_ack(job->s->consumer, job->d->token);
	command_job_free(job);
}

static void command_fail(struct command_job *job, const char *code, const char *message)
{
	command_fail_busy(job, code, message, NULL);
}

static void command_retry_or_give_up(struct command_job *job, const char *why)
{
	struct scheduler *s = job->s;

	if (command_released(job))
		return;
	if (retry_exhausted(&s->retry, job->d)) {
		command_send_reply(job, "{\"ok\":false,\"error\":{\"code\":\"unavailable\","
				   "\"message\":\"Google Calendar or the database stayed unavailable; try again later\"}}");
		retry_dead_letter(s->base, s->publisher, s->consumer, job->d, &s->retry, "retries_exhausted", why,
				  command_on_settled, job);
		return;
	}
	log_info("command will be retried", LOG_STR("command", command_names[job->kind]), LOG_STR("why", why),
		 LOG_STR("command_id", job->command_id));
	retry_later(s->base, s->publisher, s->consumer, job->d, &s->retry, command_on_settled, job);
}

static void command_on_mail(enum mq_confirm outcome, void *arg)
{
	struct command_job *job = arg;

	if (command_released(job))
		return;
	if (outcome != MQ_CONFIRM_ACK) {
		/* The change and its reply are stored: back through a retry tier, it only repeats the mail. */
		log_warn("mail job not confirmed; the command will be retried", LOG_STR("command_id", job->command_id));
		retry_later(job->s->base, job->s->publisher, job->s->consumer, job->d, &job->s->retry,
			    command_on_settled, job);
		return;
	}
	mq_ack(job->s->consumer, job->d->token);
	command_job_free(job);
}

/* The change is committed: answer, then publish its mail and ack once the broker has it. */
static void command_succeeded(struct command_job *job)
{
	static const char *const kinds[] = { "created", "rescheduled", "cancelled" };
	struct mailjob mail = {
		.kind = kinds[job->kind],
		.user_id = job->user_id,
		.meeting_id = job->result_meeting_id,
		.previous_meeting_id = job->previous_meeting_id,
		.sequence = job->sequence,
		.trace = job->command_id,
	};

	if (command_released(job))
		return;
	command_send_reply(job, job->reply);
	mailjob_publish(job->s, &mail, command_on_mail, job);
}

/* A stored reply: the command ran before. Repeat its answer and its mail. */
static void command_replay(struct command_job *job, const char *reply_text)
{
	cJSON *r;
	const cJSON *m, *p;
	const char *id, *prev;

	if (command_released(job))
		return;
	r = cJSON_Parse(reply_text);
	m = cJSON_GetObjectItemCaseSensitive(r, "meeting");
	p = cJSON_GetObjectItemCaseSensitive(r, "previous");
	id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "id"));
	prev = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "id"));
	log_info("command already applied; repeating its reply", LOG_STR("command_id", job->command_id));
	job->reply = xstrdup(reply_text);
	job->result_meeting_id = id ? xstrdup(id) : NULL;
	job->previous_meeting_id = prev ? xstrdup(prev) : NULL;
	job->sequence = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, "ical_sequence"));
	cJSON_Delete(r);
	if (job->result_meeting_id == NULL) {
		command_send_reply(job, job->reply);
		mq_ack(job->s->consumer, job->d->token);
		command_job_free(job);
		return;
	}
	command_succeeded(job);
}

/* Parse a date-time the user chose, in the meeting's (or calendar's) zone; NULL or an error message. */
static const char *command_parse_time(struct command_job *job, const char *text, const char *zone, long long now)
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

/* Commit of a reschedule or a cancel. */
static void command_on_committed(const struct db_result *r, void *arg)
{
	struct command_job *job = arg;

	if (r->status == DB_UNAVAILABLE) {
		command_retry_or_give_up(job, "database unavailable");
		return;
	}
	if (r->status != DB_OK) {
		log_error("could not commit a command", LOG_STR("command_id", job->command_id), LOG_STR("error", r->error));
		command_retry_or_give_up(job, r->error);
		return;
	}
	if (db_ntuples(r) == 0) {
		command_fail(job, "conflict", "the meeting was changed meanwhile; reload it");
		return;
	}
	job->reply = xstrdup(db_value(r, 0, 0));
	job->result_meeting_id = xstrdup(db_value(r, 0, 1));
	job->sequence = atoi(db_value(r, 0, 2));
	if (job->kind == MESSAGE_RESCHEDULE) {
		job->previous_meeting_id = xstrdup(db_value(r, 0, 3));
		metric_inc(job->s->meetings_rescheduled);
		log_info("meeting rescheduled", LOG_STR("meeting", job->result_meeting_id),
			 LOG_STR("previous", job->previous_meeting_id), LOG_STR("command_id", job->command_id));
	} else {
		metric_inc(job->s->meetings_cancelled);
		log_info("meeting cancelled", LOG_STR("meeting", job->result_meeting_id),
			 LOG_STR("command_id", job->command_id));
	}
	command_succeeded(job);
}

static void command_commit(struct command_job *job, const cJSON *google)
{
	if (job->kind == MESSAGE_RESCHEDULE) {
		char start[40], end[40];
		char *response = cJSON_PrintUnformatted(google);
		const char *meet = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(google, "hangoutLink"));
		const char *html = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(google, "htmlLink"));
		const char *params[11];

		datetime_format(job->when.epoch_s, job->when.offset_s, start, sizeof(start));
		datetime_format(job->when.epoch_s + (int64_t)job->duration_minutes * 60, job->when.offset_s, end,
				sizeof(end));
		params[0] = job->meeting_id;
		params[1] = job->user_id;
		params[2] = start;
		params[3] = end;
		params[4] = job->zone;
		params[5] = response;
		params[6] = meet;
		params[7] = html;
		params[8] = job->command_id;
		params[9] = job->has_conflict;
		params[10] = job->conflict_detail;
		db_query(job->s->db, command_reschedule_sql, 11, params, command_on_committed, job);
		cJSON_free(response);
	} else {
		const char *params[] = { job->meeting_id, job->user_id, job->reason, job->command_id };

		db_query(job->s->db, command_cancel_sql, 4, params, command_on_committed, job);
	}
}

static void command_call_google(void *arg);
static void command_check(struct command_job *job);

static void command_on_token(enum tokens_status status, const char *token, void *arg)
{
	struct command_job *job = arg;

	if (command_released(job))
		return;
	switch (status) {
	case TOKENS_OK:
		xfree_secret(job->access_token);
		job->access_token = xstrdup(token);
		if ((job->kind == MESSAGE_RESCHEDULE || job->kind == MESSAGE_AVAILABILITY) && !job->checked)
			command_check(job);
		else
			booking_rate_limited(job->s, job->user_id, command_call_google, job);
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

static void command_on_google(const struct google_result *r, void *arg)
{
	struct command_job *job = arg;
	bool deleted_already = job->kind == MESSAGE_CANCEL && (r->outcome == GOOGLE_GONE || r->outcome == GOOGLE_NOT_FOUND);

	if (command_released(job))
		return;
	if (r->outcome == GOOGLE_UNAUTHORIZED && !job->refreshed) {
		job->refreshed = true;
		tokens_get(job->s->tokens, job->user_id, true, command_on_token, job);
		return;
	}
	if (r->outcome == GOOGLE_OK || deleted_already) {
		if (deleted_already)
			log_info("the event was already deleted at Google", LOG_STR("event", job->event_id));
		command_commit(job, r->json);
		return;
	}
	if (r->outcome == GOOGLE_TRANSIENT) {
		command_retry_or_give_up(job, r->reason ? r->reason : "Google unavailable");
		return;
	}
	{
		char *msg = xasprintf("Google Calendar refused the change (%s)%s%s",
				      r->reason ? r->reason : google_outcome_name(r->outcome), r->message ? ": " : "",
				      r->message ? r->message : "");

		command_fail(job, "google_rejected", msg);
		free(msg);
	}
}

static void command_call_google(void *arg)
{
	struct command_job *job = arg;
	struct scheduler *s = job->s;

	if (job->kind == MESSAGE_RESCHEDULE) {
		struct event_spec spec = { .start_s = job->when.epoch_s, .offset_s = job->when.offset_s,
					   .duration_minutes = job->duration_minutes, .time_zone = job->zone };
		cJSON *patch = event_build_move(&spec);

		google_event_patch(s->google, job->access_token, job->calendar_id, job->event_id, patch, COMMAND_QUERY,
				   command_on_google, job);
		cJSON_Delete(patch);
	} else {
		google_event_delete(s->google, job->access_token, job->calendar_id, job->event_id, "sendUpdates=all",
				    command_on_google, job);
	}
}

/* Move over busy time only when the person said so; the new row records what the check found. */
static void command_on_checked_move(struct command_job *job, const struct conflict_result *r)
{
	switch (r->status) {
	case CONFLICT_FREE:
		job->has_conflict = "f";
		break;
	case CONFLICT_UNCHECKED:
		job->conflict_detail = xstrdup(r->detail);
		break;
	case CONFLICT_BUSY:
		if (!job->allow_conflict) {
			command_fail_busy(job, "conflict",
					  "the calendar is busy at that time; choose another or move it anyway",
					  busy_to_json(r->busy, job->zone));
			return;
		}
		job->has_conflict = "t";
		job->conflict_detail = busy_to_text(r->busy, job->zone, 5);
		break;
	default:
		return;
	}
	job->checked = true;
	booking_rate_limited(job->s, job->user_id, command_call_google, job);
}

/* The rep's busy time over the asked range and the free spans long enough for a meeting; a read, never stored. */
static void command_on_checked_availability(struct command_job *job, const struct conflict_result *r)
{
	struct busy_list free_time = { 0 };
	const struct busy_list none = { 0 };
	const struct busy_list *busy = r->status == CONFLICT_BUSY ? r->busy : &none;
	cJSON *reply, *a;
	char *text;

	if (r->status == CONFLICT_UNCHECKED) {
		command_fail(job, "google_rejected", r->detail);
		return;
	}
	busy_free_gaps(busy, job->from_s, job->to_s, (int64_t)job->min_free_minutes * 60, &free_time);
	reply = cJSON_CreateObject();
	cJSON_AddBoolToObject(reply, "ok", 1);
	cJSON_AddStringToObject(reply, "command_id", job->command_id);
	a = cJSON_AddObjectToObject(reply, "availability");
	cJSON_AddStringToObject(a, "time_zone", job->zone);
	cJSON_AddItemToObject(a, "busy", busy_to_json(busy, job->zone));
	cJSON_AddItemToObject(a, "free", busy_to_json(&free_time, job->zone));
	text = cJSON_PrintUnformatted(reply);
	command_send_reply(job, text);
	cJSON_free(text);
	cJSON_Delete(reply);
	busy_clear(&free_time);
	if (command_released(job))
		return;
	mq_ack(job->s->consumer, job->d->token);
	command_job_free(job);
}

static void command_on_checked(const struct conflict_result *r, void *arg)
{
	struct command_job *job = arg;

	if (command_released(job))
		return;
	if (r->status == CONFLICT_UNAUTHORIZED && !job->refreshed) {
		job->refreshed = true;
		tokens_get(job->s->tokens, job->user_id, true, command_on_token, job);
		return;
	}
	if (r->status == CONFLICT_UNAUTHORIZED || r->status == CONFLICT_TRANSIENT) {
		/* A read is worth nothing late: the gateway waits seconds, not the retry tiers. */
		if (job->kind == MESSAGE_AVAILABILITY)
			command_fail(job, "unavailable", "Google Calendar is unavailable; try again");
		else
			command_retry_or_give_up(job, r->reason ? r->reason : "Google unavailable");
		return;
	}
	if (job->kind == MESSAGE_AVAILABILITY)
		command_on_checked_availability(job, r);
	else
		command_on_checked_move(job, r);
}

static void command_check(struct command_job *job)
{
	struct conflict_slot slot = {
		.user_id = job->user_id,
		.access_token = job->access_token,
		.calendar_id = job->calendar_id,
		.purpose = job->kind == MESSAGE_AVAILABILITY ? "availability" : "booking",
	};

	if (job->kind == MESSAGE_AVAILABILITY) {
		slot.start_s = job->from_s;
		slot.end_s = job->to_s;
	} else {
		slot.start_s = job->when.epoch_s;
		slot.end_s = job->when.epoch_s + (int64_t)job->duration_minutes * 60;
		slot.own_start_s = job->own_start_s;
		slot.own_end_s = job->own_end_s;
	}
	conflict_check(job->s, &slot, command_on_checked, job);
}

static void command_on_meeting(const struct db_result *r, void *arg)
{
	struct command_job *job = arg;
	const char *err;

	if (r->status != DB_OK) {
		command_retry_or_give_up(job, r->status == DB_UNAVAILABLE ? "database unavailable" : r->error);
		return;
	}
	if (db_ntuples(r) == 0) {
		command_fail(job, "not_found", "no such meeting");
		return;
	}
	if (strcmp(db_value(r, 0, 1), "scheduled") != 0) {
		char *msg = xasprintf("the meeting is %s; only a scheduled meeting can be changed", db_value(r, 0, 1));

		command_fail(job, "conflict", msg);
		free(msg);
		return;
	}
	job->event_id = xstrdup(db_value(r, 0, 2));
	job->calendar_id = xstrdup(db_value(r, 0, 3));
	job->duration_minutes = atoi(db_value(r, 0, 4));
	job->zone = xstrdup(db_value(r, 0, 5));
	job->sequence = atoi(db_value(r, 0, 7));
	job->own_start_s = atoll(db_value(r, 0, 9));
	job->own_end_s = atoll(db_value(r, 0, 10));
	if (job->kind == MESSAGE_RESCHEDULE &&
	    (err = command_parse_time(job, job->date_time, job->zone, atoll(db_value(r, 0, 8)))) != NULL) {
		char *msg = xasprintf("newDateTime: %s", err);

		command_fail(job, "invalid", msg);
		free(msg);
		return;
	}
	tokens_get(job->s->tokens, job->user_id, false, command_on_token, job);
}

static void command_on_booked(const struct booking_result *r, void *arg)
{
	struct command_job *job = arg;
	char *msg;

	if (command_released(job))
		return;
	switch (r->status) {
	case BOOKING_DONE:
		if (r->created)
			metric_inc(job->s->meetings_created);
		log_info("meeting created by command", LOG_STR("meeting", r->meeting_id),
			 LOG_STR("command_id", job->command_id));
		job->reply = xasprintf("{\"ok\":true,\"command_id\":\"%s\",\"meeting\":%s}", job->command_id,
				       r->meeting_json);
		job->result_meeting_id = xstrdup(r->meeting_id);
		job->sequence = r->sequence;
		command_succeeded(job);
		return;
	case BOOKING_NOT_CONNECTED:
	case BOOKING_REVOKED:
		command_fail(job, "not_connected", "Google Calendar is not connected; reconnect it and try again");
		return;
	case BOOKING_CONFLICT:
		command_fail(job, "conflict", "the lead already has a scheduled meeting");
		return;
	case BOOKING_BUSY:
		command_fail_busy(job, "conflict", "the calendar is busy at that time; choose another or book anyway",
				  busy_to_json(r->busy, job->booking.time_zone));
		return;
	case BOOKING_REJECTED:
		msg = xasprintf("Google Calendar refused the event (%s): %s", r->reason, r->detail);
		command_fail(job, "google_rejected", msg);
		free(msg);
		return;
	case BOOKING_TRANSIENT:
		command_retry_or_give_up(job, r->detail ? r->detail : r->reason);
		return;
	}
}

static char *command_opt(const struct db_result *r, int col)
{
	const char *v = db_value(r, 0, col);

	return v ? xstrdup(v) : NULL;
}

static void command_on_lead(const struct db_result *r, void *arg)
{
	struct command_job *job = arg;
	const struct config *cfg = job->s->cfg;
	const char *err, *when;
	struct lead_facts el;
	char *transcript;
	struct booking *b = &job->booking;
	cJSON *meta;

	if (r->status != DB_OK) {
		command_retry_or_give_up(job, r->status == DB_UNAVAILABLE ? "database unavailable" : r->error);
		return;
	}
	if (db_ntuples(r) == 0) {
		command_fail(job, "not_found", "no such lead");
		return;
	}
	if (strcmp(db_value(r, 0, LC_ACTIVE), "t") == 0) {
		command_fail(job, "conflict", "the lead already has a scheduled meeting");
		return;
	}
	if (db_value(r, 0, LC_CONNECTED) == NULL || strcmp(db_value(r, 0, LC_CONNECTED), "t") != 0) {
		command_fail(job, "not_connected", "Google Calendar is not connected; connect it first");
		return;
	}
	job->zone = xstrdup(db_value(r, 0, LC_ZONE));
	when = job->date_time ? job->date_time : db_value(r, 0, LC_DATETIME);
	if ((err = command_parse_time(job, when, job->zone, atoll(db_value(r, 0, LC_NOW)))) != NULL) {
		/* Every 400 names its field; without one, the lead's own time was used and dateTime is the way out. */
		char *msg = job->date_time != NULL ? xasprintf("dateTime: %s", err)
						    : xasprintf("dateTime is needed: the lead's own demo time cannot be used (%s)",
								err);

		command_fail(job, "invalid", msg);
		free(msg);
		return;
	}
	if (job->email_override != NULL) {
		job->email = event_clean_email(job->email_override);
		if (job->email == NULL) {
			command_fail(job, "invalid", "attendee_email is not a valid email address");
			return;
		}
	} else {
		job->email = event_clean_email(db_value(r, 0, LC_CONTACT_EMAIL));
		if (job->email == NULL)
			job->email = event_clean_email(db_value(r, 0, LC_EXTRACTED_EMAIL));
		if (job->email == NULL) {
			command_fail(job, "invalid", "the lead has no email address; give attendee_email");
			return;
		}
	}
	memset(&el, 0, sizeof(el));
	el.name = job->name_override ? job->name_override
		  : db_value(r, 0, LC_NAME) ? db_value(r, 0, LC_NAME) : db_value(r, 0, LC_CONTACT_NAME);
	el.company = db_value(r, 0, LC_COMPANY);
	el.phone = db_value(r, 0, LC_PHONE);
	el.status_tag = db_value(r, 0, LC_STATUS_TAG);
	el.reasoning_json = db_value(r, 0, LC_REASONING);
	el.summary = db_value(r, 0, LC_SUMMARY);
	el.recording_url = db_value(r, 0, LC_RECORDING);
	transcript = cfg_transcript_url(cfg->transcript_url, db_value(r, 0, LC_CALL));
	el.transcript_url = transcript;
	job->description = event_description(&el);
	free(transcript);
	job->title = event_title(el.name, el.company);
	job->attendee_name = el.name ? xstrdup(el.name) : NULL;
	job->call_id = command_opt(r, LC_CALL);
	job->contact_id = command_opt(r, LC_CONTACT_ID);
	job->calendar_id = xstrdup(db_value(r, 0, LC_CALENDAR));
	meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "source", "manual");
	cJSON_AddStringToObject(meta, "command_id", job->command_id);
	job->metadata = cJSON_PrintUnformatted(meta);
	cJSON_Delete(meta);

	b->user_id = job->user_id;
	b->lead_id = job->lead_id;
	b->call_id = job->call_id;
	b->contact_id = job->contact_id;
	b->calendar_id = job->calendar_id;
	b->time_zone = job->zone;
	b->title = job->title;
	b->description = job->description;
	b->attendee_email = job->email;
	b->attendee_name = job->attendee_name;
	b->start_s = job->when.epoch_s;
	b->offset_s = job->when.offset_s;
	b->duration_minutes = (int)cfg->meeting_duration_minutes;
	b->generation = atoi(db_value(r, 0, LC_MEETINGS));
	b->metadata_json = job->metadata;
	b->command_id = job->command_id;
	b->trace = job->command_id;
	b->allow_conflict = job->allow_conflict;
	booking_run(job->s, b, NULL, command_on_booked, job);
}

static void command_on_stored(const struct db_result *r, void *arg)
{
	struct command_job *job = arg;
	struct scheduler *s = job->s;

	if (r->status != DB_OK) {
		command_retry_or_give_up(job, r->status == DB_UNAVAILABLE ? "database unavailable" : r->error);
		return;
	}
	if (db_ntuples(r) > 0) {
		command_replay(job, db_value(r, 0, 1));
		return;
	}
	if (job->kind == MESSAGE_CREATE) {
		const char *params[] = { job->lead_id, job->user_id, s->cfg->default_timezone };

		db_query(s->db, command_lead_sql, 3, params, command_on_lead, job);
	} else {
		const char *params[] = { job->meeting_id, job->user_id, s->cfg->default_timezone };

		db_query(s->db, command_meeting_sql, 3, params, command_on_meeting, job);
	}
}

/* Availability: the user's calendar, zone and tokens. */
static void command_on_user(const struct db_result *r, void *arg)
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
	tokens_get_stored(job->s->tokens, job->user_id, &tokens, command_on_token, job);
}

/* Read the body into the job, which owns the fields from here on (also on -1: command_id answers the refusal). */
static int command_parse(struct command_job *job, const char **why)
{
	struct message_command m;
	int rc = message_parse_command(job->d->msg.body, job->d->msg.body_len, &m, why);

	job->kind = m.kind;
	job->command_id = m.command_id;
	job->user_id = m.user_id;
	job->meeting_id = m.meeting_id;
	job->lead_id = m.lead_id;
	job->date_time = m.date_time;
	job->reason = m.reason;
	job->email_override = m.email_override;
	job->name_override = m.name_override;
	job->allow_conflict = m.allow_conflict;
	job->from_s = m.from_s;
	job->to_s = m.to_s;
	job->min_free_minutes = m.duration_minutes;
	return rc;
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
	return strcmp(who, mq_user(s->publisher)) == 0 || cfg_list_has(s->cfg->command_amqp_users, who);
}

static void command_refused(struct scheduler *s, const char *reason)
{
	metric_inc(metrics_counter("scheduler_messages_refused_total",
				   "Messages the scheduler refused and dead-lettered, by message and reason.", "message",
				   "command", "reason", reason, NULL));
}

void command_handle(struct scheduler *s, struct mq_delivery *d)
{
	struct command_job *job = xcalloc(1, sizeof(*job));
	const char *why = NULL;
	const char *params[2];

	job->s = s;
	job->d = d;
	metric_inc(s->commands);
	if (!command_trusted(s, d)) {
		char *detail = xasprintf("published by broker user '%s', which may not send meeting commands "
					 "(COMMAND_AMQP_USERS)", d->msg.user_id ? d->msg.user_id : "(none)");

		/* No reply: reply_to is the sender's word, and the sender is nobody we answer. */
		log_warn("command refused: its publisher is not a broker user allowed to send commands; if it is the "
			 "gateway, add the gateway's broker user to COMMAND_AMQP_USERS",
			 LOG_STR("publisher", d->msg.user_id ? d->msg.user_id : "(none)"),
			 LOG_STR("allowed", s->cfg->command_amqp_users), LOG_STR("own_user", mq_user(s->publisher)),
			 LOG_STR("message_id", d->msg.message_id), LOG_STR("routing_key", d->msg.routing_key));
		command_refused(s, "untrusted_publisher");
		retry_dead_letter(s->base, s->publisher, s->consumer, d, &s->retry, "untrusted_publisher", detail,
				  command_on_settled, job);
		free(detail);
		return;
	}
	if (command_parse(job, &why) < 0) {
		/* Poison for the queue, but whoever sent it still deserves an answer. */
		char *msg = xasprintf("{\"ok\":false,\"error\":{\"code\":\"invalid\",\"message\":\"%s\"}}", why);

		log_warn("command refused: a field is not what the gateway sends", LOG_STR("why", why),
			 LOG_STR("command_id", job->command_id), LOG_STR("message_id", d->msg.message_id));
		command_refused(s, "malformed");
		command_send_reply(job, msg);
		free(msg);
		retry_dead_letter(s->base, s->publisher, s->consumer, d, &s->retry, "malformed", why, command_on_settled, job);
		return;
	}
	params[0] = job->command_id;
	params[1] = job->user_id;
	if (job->kind == MESSAGE_AVAILABILITY) {
		const char *user[] = { job->user_id, s->cfg->default_timezone };

		db_query(s->db, command_user_sql, 2, user, command_on_user, job);
		return;
	}
	db_query(s->db, command_stored_sql, 2, params, command_on_stored, job);
}
