/*
 * lead: an analysed lead becomes a meeting, or a recorded reason why not.
 *
 * The message only names the lead; the database is the source of truth
 * (docs/booking.md, "What the scheduler reads"). The checks run in this order
 * (unknown_lead, not_individual, no_datetime, bad_datetime, past_datetime,
 * no_email, not_connected; docs/booking.md says why) and the first that applies is recorded in
 * calendar_booking_outcomes, where the API shows it to the user. A lead is
 * booked automatically at most once: once it has any meeting, later copies
 * of its message only make sure the owner's mail went out.
 *
 * The lead's owner is lead_analytics.user_id, never the message's user_id:
 * a message whose user_id names anyone else is refused (dead-lettered as
 * user_mismatch) and changes nothing. An outcome row belongs to the user it
 * was first recorded for; a later record in another user's name leaves it
 * alone (the upsert is scoped by user), so no message can rewrite the
 * outcome another user sees.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "booking.h"
#include "busy.h"
#include "datetime.h"
#include "db.h"
#include "calevent.h"
#include "leadfacts.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "retry.h"
#include "scheduler.h"
#include "tokens.h"
#include "xmalloc.h"

/* A lead not found yet may be a webhook transaction still committing: look again this many times. */
#define LEAD_UNKNOWN_RETRIES 2

/*
 * The lead's meetings are read through the lead's own index only (one
 * LATERAL, no status condition), which answers both the count and the
 * active meeting in one probe. With `status = 'scheduled'` in the join,
 * PostgreSQL could equally pick migration 032's idx_calendar_meetings_status on
 * a table never analyzed, and a connection that cached that plan read
 * every scheduled meeting for each lead (tests/bench: 1,200 buffers a
 * load); migration 036 dropped that index.
 */
static const char lead_load_sql[] =
	"SELECT la.user_id, la.demo_book_datetime, COALESCE(la.analysis_type, 'individual'), " LEADFACTS_COLUMNS ","
	" COALESCE(u.google_calendar_id, 'primary'), u.google_calendar_timezone,"
	" COALESCE(m.meetings, 0), CASE WHEN m.active THEN m.id END, CASE WHEN m.active THEN m.ical_sequence END,"
	" m.active AND m.rescheduled_from_meeting_id IS NULL AND NOT COALESCE(m.invite_email_sent, FALSE),"
	" EXTRACT(EPOCH FROM now())::bigint, " TOKENS_COLUMNS
	" FROM lead_analytics la"
	" JOIN users u ON u.id = la.user_id"
	LEADFACTS_JOINS
	" LEFT JOIN LATERAL (SELECT id, ical_sequence, rescheduled_from_meeting_id, invite_email_sent,"
	"  status = 'scheduled' AS active, count(*) OVER () AS meetings FROM calendar_meetings"
	"  WHERE lead_analytics_id = la.id ORDER BY status <> 'scheduled' LIMIT 1) m ON TRUE"
	" WHERE la.id = $1";

enum {
	COL_USER, COL_DATETIME, COL_ANALYSIS_TYPE, COL_FACTS,
	COL_CALENDAR = COL_FACTS + LEADFACTS_NCOLUMNS, COL_ZONE, COL_MEETINGS, COL_ACTIVE_ID, COL_ACTIVE_SEQ,
	COL_ACTIVE_UNMAILED, COL_NOW, COL_TOKENS,
};

static const char lead_outcome_sql[] =
	"INSERT INTO calendar_booking_outcomes (lead_analytics_id, user_id, outcome, reason, detail, attempts)"
	" VALUES ($1, $2, $3, $4, $5, 1)"
	" ON CONFLICT (lead_analytics_id) DO UPDATE SET outcome = EXCLUDED.outcome, reason = EXCLUDED.reason,"
	" detail = EXCLUDED.detail, attempts = calendar_booking_outcomes.attempts + 1"
	" WHERE calendar_booking_outcomes.outcome <> 'scheduled'"
	" AND calendar_booking_outcomes.user_id = EXCLUDED.user_id";

/* A conflict keeps the requested slot and the busy spans for the owner's mail (mailer-worker/job.c). */
static const char lead_conflict_sql[] =
	"INSERT INTO calendar_booking_outcomes (lead_analytics_id, user_id, outcome, reason, detail, attempts,"
	" requested_start, requested_end, busy)"
	" VALUES ($1, $2, 'skipped', 'conflict', $3, 1, $4::timestamptz, $5::timestamptz, $6::jsonb)"
	" ON CONFLICT (lead_analytics_id) DO UPDATE SET outcome = 'skipped', reason = 'conflict',"
	" detail = EXCLUDED.detail, requested_start = EXCLUDED.requested_start, requested_end = EXCLUDED.requested_end,"
	" busy = EXCLUDED.busy, attempts = calendar_booking_outcomes.attempts + 1"
	" WHERE calendar_booking_outcomes.outcome <> 'scheduled'"
	" AND calendar_booking_outcomes.user_id = EXCLUDED.user_id";

struct lead_job {
	struct scheduler *s;
	struct mq_delivery *d;
	char *lead_id;
	char *user_id;
	char *trace;
	struct booking booking;
	/* Strings the booking points at. */
	char *call_id, *contact_id, *calendar_id, *time_zone, *title, *description, *email, *attendee_name,
		*metadata;
	char *meeting_id;
};

static void lead_job_free(struct lead_job *job)
{
	scheduler_job_done(job->s, job->d);
	free(job->lead_id);
	free(job->user_id);
	free(job->trace);
	free(job->call_id);
	free(job->contact_id);
	free(job->calendar_id);
	free(job->time_zone);
	free(job->title);
	free(job->description);
	free(job->email);
	free(job->attendee_name);
	free(job->metadata);
	free(job->meeting_id);
	free(job);
}

/* Shutting down: the job ends unsettled and the broker redelivers the lead (lib/worker.h). */
static bool lead_released(struct lead_job *job)
{
	if (!scheduler_closing(job->s))
		return false;
	log_info("shutting down; the lead goes back to the broker", LOG_STR("lead", job->lead_id),
		 LOG_STR("trace", job->trace));
	lead_job_free(job);
	return true;
}

/* A retry or a dead letter has taken the delivery (or failed to, and the broker redelivers it): the job is done. */
static void lead_on_settled(bool settled, void *arg)
{
	(void)settled;
	lead_job_free(arg);
}

static void lead_ack(struct lead_job *job)
{
	if (lead_released(job))
		return;
	mq_ack(job->s->env.consumer, job->d->token);
	lead_job_free(job);
}

static void lead_retry(struct lead_job *job, const char *why)
{
	struct scheduler *s = job->s;

	if (lead_released(job))
		return;
	log_info("lead will be retried", LOG_STR("lead", job->lead_id), LOG_STR("why", why),
		 LOG_INT("attempt", retry_attempt(job->d) + 1), LOG_STR("trace", job->trace));
	retry_later(&s->env.retry, job->d, lead_on_settled, job);
}

static void lead_on_outcome(const struct db_result *r, void *arg)
{
	struct lead_job *job = arg;

	if (r->status == DB_UNAVAILABLE) {
		lead_retry(job, "database unavailable while recording the outcome");
		return;
	}
	if (r->status != DB_OK)
		log_error("could not record a lead's outcome", LOG_STR("lead", job->lead_id), LOG_STR("error", r->error));
	lead_ack(job);
}

/* Record why the lead was not (or not yet) booked, then ack. */
static void lead_record(struct lead_job *job, const char *outcome, const char *reason, const char *detail)
{
	const char *params[] = { job->lead_id, job->user_id, outcome, reason, detail };

	if (lead_released(job))
		return;
	log_info(strcmp(outcome, "skipped") == 0 ? "lead not scheduled" : "lead booking failed",
		 LOG_STR("lead", job->lead_id), LOG_STR("reason", reason), LOG_STR("detail", detail),
		 LOG_STR("trace", job->trace));
	metric_inc(metrics_counter("scheduler_leads_not_scheduled_total", "Leads not scheduled, by reason.", "reason",
				   reason, NULL));
	db_query(job->s->env.db, lead_outcome_sql, 5, params, lead_on_outcome, job);
}

static void lead_on_best_effort(const struct db_result *r, void *arg)
{
	(void)arg;
	if (r->status != DB_OK)
		log_warn("could not record a lead's outcome", LOG_STR("error", r->error));
}

static void lead_refused(struct scheduler *s, const char *reason)
{
	metric_inc(metrics_counter("scheduler_messages_refused_total",
				   "Messages the scheduler refused and dead-lettered, by message and reason.", "message",
				   "lead", "reason", reason, NULL));
}

static void lead_dead_letter(struct lead_job *job, const char *reason, const char *detail)
{
	struct scheduler *s = job->s;

	if (lead_released(job))
		return;
	retry_dead_letter(&s->env.retry, job->d, reason, detail, lead_on_settled, job);
}

static void lead_on_mail(enum mq_confirm outcome, void *arg)
{
	struct lead_job *job = arg;

	if (outcome == MQ_CONFIRM_ACK) {
		lead_ack(job);
		return;
	}
	/*
	 * The meeting is committed; the lead comes back through a retry tier, finds it and publishes the
	 * mail again. Not an immediate requeue: while the publishing connection is down that would bounce
	 * the lead through this worker until its quorum delivery limit dead-letters it.
	 */
	lead_retry(job, "mail job not confirmed");
}

static void lead_publish_created(struct lead_job *job, const char *meeting_id, int sequence)
{
	struct mailjob mail = {
		.kind = "created",
		.user_id = job->user_id,
		.meeting_id = meeting_id,
		.lead_analytics_id = job->lead_id,
		.sequence = sequence,
		.trace = job->trace,
	};

	if (lead_released(job))
		return;
	mailjob_publish(job->s, &mail, lead_on_mail, job);
}

static void lead_on_conflict_recorded(const struct db_result *r, void *arg)
{
	struct lead_job *job = arg;
	struct mailjob mail = {
		.kind = "conflict",
		.user_id = job->user_id,
		.lead_analytics_id = job->lead_id,
		.trace = job->trace,
	};

	if (r->status != DB_OK) {
		lead_retry(job, r->status == DB_UNAVAILABLE ? "database unavailable while recording the conflict"
							     : r->error);
		return;
	}
	if (lead_released(job))
		return;
	mailjob_publish(job->s, &mail, lead_on_mail, job);
}

/* The rep is busy at the lead's time: no event; the outcome says when, and the owner is told to pick a time. */
static void lead_conflict(struct lead_job *job, const struct booking_result *r)
{
	const struct booking *b = &job->booking;
	char start[40], end[40], *busy_text;
	cJSON *busy = busy_to_json(r->busy, b->time_zone);
	const char *params[6];

	datetime_format(b->start_s, b->offset_s, start, sizeof(start));
	datetime_format(b->start_s + (int64_t)b->duration_minutes * 60, b->offset_s, end, sizeof(end));
	busy_text = cJSON_PrintUnformatted(busy);
	{
		char *detail = xasprintf("the calendar is busy then: %s", r->detail);

		params[0] = job->lead_id;
		params[1] = job->user_id;
		params[2] = detail;
		params[3] = start;
		params[4] = end;
		params[5] = busy_text;
		log_info("lead not scheduled", LOG_STR("lead", job->lead_id), LOG_STR("reason", "conflict"),
			 LOG_STR("detail", detail), LOG_STR("trace", job->trace));
		metric_inc(metrics_counter("scheduler_leads_not_scheduled_total", "Leads not scheduled, by reason.",
					   "reason", "conflict", NULL));
		db_query(job->s->env.db, lead_conflict_sql, 6, params, lead_on_conflict_recorded, job);
		free(detail);
	}
	cJSON_free(busy_text);
	cJSON_Delete(busy);
}

static void lead_on_booked(const struct booking_result *r, void *arg)
{
	struct lead_job *job = arg;
	struct scheduler *s = job->s;

	if (lead_released(job))
		return;
	switch (r->status) {
	case BOOKING_DONE:
		if (r->created) {
			metric_inc(s->meetings_created);
			log_info("meeting created", LOG_STR("lead", job->lead_id), LOG_STR("meeting", r->meeting_id),
				 LOG_STR("trace", job->trace));
		} else {
			log_info("meeting already created by a concurrent delivery of this lead; mailing about it",
				 LOG_STR("lead", job->lead_id), LOG_STR("meeting", r->meeting_id),
				 LOG_STR("trace", job->trace));
		}
		job->meeting_id = xstrdup(r->meeting_id);
		lead_publish_created(job, job->meeting_id, 0);
		return;
	case BOOKING_NOT_CONNECTED:
		lead_record(job, "skipped", "not_connected", "the user's Google Calendar is not connected");
		return;
	case BOOKING_REVOKED:
		lead_record(job, "failed", "grant_revoked", "the user revoked Google Calendar access; reconnect to book");
		return;
	case BOOKING_REJECTED: {
		char *detail = xasprintf("Google refused the event (%s): %s", r->reason ? r->reason : "unknown",
					 r->detail ? r->detail : "no detail");

		lead_record(job, "failed", "google_rejected", detail);
		free(detail);
		return;
	}
	case BOOKING_CONFLICT:
		lead_ack(job);
		return;
	case BOOKING_BUSY:
		lead_conflict(job, r);
		return;
	case BOOKING_TRANSIENT:
		if (retry_exhausted(&s->env.retry, job->d)) {
			char *detail = xasprintf("gave up after %d attempts; last error: %s",
						 retry_attempt(job->d) + 1, r->detail ? r->detail : r->reason);
			const char *params[] = { job->lead_id, job->user_id, "failed", "retries_exhausted", detail };

			/* The outcome is best effort here: the dead letter carries the same reason. */
			db_query(s->env.db, lead_outcome_sql, 5, params, lead_on_best_effort, NULL);
			lead_dead_letter(job, "retries_exhausted", detail);
			free(detail);
			return;
		}
		lead_retry(job, r->reason);
		return;
	}
}

static char *lead_metadata(const struct db_result *r, const struct lead_row *lr, const char *trace)
{
	cJSON *m = cJSON_CreateObject();
	char *text;

	cJSON_AddStringToObject(m, "source", "ai_call");
	if (lr->facts.status_tag)
		cJSON_AddStringToObject(m, "lead_status_tag", lr->facts.status_tag);
	if (lr->facts.phone)
		cJSON_AddStringToObject(m, "phone_number", lr->facts.phone);
	if (db_value(r, 0, COL_DATETIME))
		cJSON_AddStringToObject(m, "demo_book_datetime", db_value(r, 0, COL_DATETIME));
	if (trace != NULL)
		cJSON_AddStringToObject(m, "message_id", trace);
	text = cJSON_PrintUnformatted(m);
	cJSON_Delete(m);
	return text;
}

static char *lead_opt(const struct db_result *r, int col)
{
	const char *v = db_value(r, 0, col);

	return v ? xstrdup(v) : NULL;
}

/* Everything the booking needs, taken from the loaded row. */
static void lead_prepare(struct lead_job *job, const struct db_result *r, const struct lead_row *lr,
			 const struct datetime *dt)
{
	const struct config *cfg = job->s->env.cfg;
	struct booking *b = &job->booking;

	job->call_id = lr->call_id ? xstrdup(lr->call_id) : NULL;
	job->contact_id = lr->contact_id ? xstrdup(lr->contact_id) : NULL;
	job->calendar_id = lead_opt(r, COL_CALENDAR);
	calevent_for_lead(lr, NULL, cfg->transcript_url, &job->title, &job->description, &job->attendee_name);
	job->metadata = lead_metadata(r, lr, job->trace);

	b->user_id = job->user_id;
	b->lead_id = job->lead_id;
	b->call_id = job->call_id;
	b->contact_id = job->contact_id;
	b->calendar_id = job->calendar_id;
	b->time_zone = job->time_zone;
	b->title = job->title;
	b->description = job->description;
	b->attendee_email = job->email;
	b->attendee_name = job->attendee_name;
	b->start_s = dt->epoch_s;
	b->offset_s = dt->offset_s;
	b->duration_minutes = (int)cfg->meeting_duration_minutes;
	b->generation = 0;
	b->metadata_json = job->metadata;
	b->trace = job->trace;
	b->allow_conflict = cfg->conflict_policy == CFG_CONFLICT_BOOK;
}

static void lead_on_loaded(const struct db_result *r, void *arg)
{
	struct lead_job *job = arg;
	struct scheduler *s = job->s;
	const char *raw, *zone;
	struct tokens_stored tokens;
	struct lead_row lr;
	struct datetime dt;
	char *detail;

	if (r->status != DB_OK) {
		lead_retry(job, r->status == DB_UNAVAILABLE ? "database unavailable" : r->error);
		return;
	}
	if (db_ntuples(r) == 0) {
		if (retry_attempt(job->d) < LEAD_UNKNOWN_RETRIES) {
			lead_retry(job, "lead not found yet");
			return;
		}
		lead_record(job, "skipped", "unknown_lead", "no lead with this id belongs to this user");
		return;
	}
	/* The database says whose lead it is; a message naming someone else is refused and changes nothing. */
	if (strcmp(db_value(r, 0, COL_USER), job->user_id) != 0) {
		detail = xasprintf("the message names user %s, but the lead belongs to another user", job->user_id);
		log_warn("lead refused: its message names another user than the lead's owner", LOG_STR("lead", job->lead_id),
			 LOG_STR("message_user", job->user_id), LOG_STR("owner", db_value(r, 0, COL_USER)),
			 LOG_STR("trace", job->trace));
		lead_refused(s, "user_mismatch");
		lead_dead_letter(job, "user_mismatch", detail);
		free(detail);
		return;
	}
	free(job->user_id);
	job->user_id = xstrdup(db_value(r, 0, COL_USER));
	if (atoll(db_value(r, 0, COL_MEETINGS)) > 0) {
		const char *active = db_value(r, 0, COL_ACTIVE_ID);
		const char *unmailed = db_value(r, 0, COL_ACTIVE_UNMAILED);

		/* Booked before: a redelivery, or a crash after the commit. Make sure the mail went out. */
		if (active != NULL && unmailed != NULL && strcmp(unmailed, "t") == 0) {
			job->meeting_id = xstrdup(active);
			lead_publish_created(job, job->meeting_id, atoi(db_value(r, 0, COL_ACTIVE_SEQ)));
			return;
		}
		lead_ack(job);
		return;
	}
	if (strcmp(db_value(r, 0, COL_ANALYSIS_TYPE), "individual") != 0) {
		lead_record(job, "skipped", "not_individual", "only individual analyses are scheduled");
		return;
	}
	raw = db_value(r, 0, COL_DATETIME);
	if (raw == NULL || raw[strspn(raw, " \t\r\n")] == '\0') {
		lead_record(job, "skipped", "no_datetime", "the analysis found no demo date and time");
		return;
	}
	zone = db_value(r, 0, COL_ZONE) ? db_value(r, 0, COL_ZONE) : s->env.cfg->default_timezone;
	if (datetime_parse(raw, strlen(raw), &dt) < 0 || datetime_resolve(&dt, zone) < 0) {
		detail = xasprintf("demo_book_datetime '%.100s' is not an ISO 8601 date and time", raw);
		lead_record(job, "skipped", "bad_datetime", detail);
		free(detail);
		return;
	}
	if (dt.epoch_s <= atoll(db_value(r, 0, COL_NOW))) {
		detail = xasprintf("demo_book_datetime '%.100s' is in the past", raw);
		lead_record(job, "skipped", "past_datetime", detail);
		free(detail);
		return;
	}
	leadfacts_from_row(r, 0, COL_FACTS, &lr);
	job->email = calevent_attendee_email(&lr);
	if (job->email == NULL) {
		lead_record(job, "skipped", "no_email", "neither the contact nor the analysis has a usable email");
		return;
	}
	tokens_stored_from(r, 0, COL_TOKENS, &tokens);
	if (!tokens_stored_connected(&tokens)) {
		lead_record(job, "skipped", "not_connected", "the user's Google Calendar is not connected");
		return;
	}
	job->time_zone = xstrdup(zone);
	lead_prepare(job, r, &lr, &dt);
	booking_run(s, &job->booking, &tokens, lead_on_booked, job);
}

/* The message names the lead; anything unreadable goes to scheduler.dead at once. */
static int lead_parse(struct lead_job *job, const char **why)
{
	struct message_lead m;

	if (message_parse_lead(job->d->msg.body, job->d->msg.body_len, &m, why) < 0)
		return -1;
	job->lead_id = m.lead_id;
	job->user_id = m.user_id;
	return 0;
}

void lead_handle(struct scheduler *s, struct mq_delivery *d)
{
	struct lead_job *job = xcalloc(1, sizeof(*job));
	const char *why = NULL;

	job->s = s;
	job->d = d;
	job->trace = d->msg.message_id ? xstrdup(d->msg.message_id) : NULL;
	metric_inc(s->leads_consumed);
	if (lead_parse(job, &why) < 0) {
		lead_refused(s, "malformed");
		lead_dead_letter(job, "malformed", why);
		return;
	}
	{
		const char *params[] = { job->lead_id };

		db_query(s->env.db, lead_load_sql, 1, params, lead_on_loaded, job);
	}
}
