/*
 * booking: idempotent event creation and the commit of its row (see booking.h).
 */
#include "booking.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <event2/event.h>

#include "busy.h"
#include "conflict.h"
#include "datetime.h"
#include "db.h"
#include "calevent.h"
#include "google.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "scheduler.h"
#include "tokens.h"
#include "xmalloc.h"

/* Always version 1: Google drops conference data from any write made without it. */
#define BOOKING_QUERY "sendUpdates=all&conferenceDataVersion=1"

/*
 * The row and the lead's outcome are written in one statement, a manual
 * create's reply too. A lead's booking first tries the plain insert
 * (booking_commit_sql), the statement PostgreSQL runs fastest: it sets up
 * every node of a plan on each execution, used or not, and this one runs for
 * every booking. No row back means another attempt committed first (ON
 * CONFLICT); booking_commit_current_sql, which also looks up the lead's
 * active meeting, then says whether it holds this booking's event. The three
 * statements repeat the same insert and outcome text on purpose: each reads
 * whole. All take the same parameters ($22, the command id, only the last).
 */
static const char booking_commit_sql[] =
	"WITH ins AS (INSERT INTO calendar_meetings (user_id, lead_analytics_id, call_id, contact_id, google_event_id,"
	"  google_calendar_id, meeting_title, meeting_description, attendee_email, attendee_name,"
	"  meeting_start_time, meeting_end_time, meeting_duration_minutes, timezone, google_api_response,"
	"  meeting_metadata, booking_generation, meet_link, html_link, created_by, has_conflict, conflict_detail)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::timestamptz, $12::timestamptz, $13::int, $14,"
	"  $15::jsonb, $16::jsonb, $17::int, $18, $19, $1, $20::boolean, $21)"
	" ON CONFLICT DO NOTHING RETURNING id, ical_sequence),"
	" outcome AS (INSERT INTO calendar_booking_outcomes (lead_analytics_id, user_id, outcome, meeting_id, attempts)"
	" SELECT $2, $1, 'scheduled', id, 1 FROM ins"
	" ON CONFLICT (lead_analytics_id) DO UPDATE SET outcome = 'scheduled', reason = NULL, detail = NULL,"
	"  meeting_id = EXCLUDED.meeting_id, attempts = calendar_booking_outcomes.attempts + 1"
	"  WHERE calendar_booking_outcomes.user_id = EXCLUDED.user_id)"
	" SELECT id, ical_sequence, TRUE, TRUE FROM ins";

/* The new row, else the lead's active meeting: is it this booking's event, and is it new. */
static const char booking_commit_current_sql[] =
	"WITH ins AS (INSERT INTO calendar_meetings (user_id, lead_analytics_id, call_id, contact_id, google_event_id,"
	"  google_calendar_id, meeting_title, meeting_description, attendee_email, attendee_name,"
	"  meeting_start_time, meeting_end_time, meeting_duration_minutes, timezone, google_api_response,"
	"  meeting_metadata, booking_generation, meet_link, html_link, created_by, has_conflict, conflict_detail)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::timestamptz, $12::timestamptz, $13::int, $14,"
	"  $15::jsonb, $16::jsonb, $17::int, $18, $19, $1, $20::boolean, $21)"
	" ON CONFLICT DO NOTHING RETURNING *),"
	" cur AS (SELECT * FROM ins UNION ALL SELECT m.* FROM calendar_meetings m"
	"  WHERE m.lead_analytics_id = $2 AND m.status = 'scheduled' AND NOT EXISTS (SELECT 1 FROM ins)),"
	" outcome AS (INSERT INTO calendar_booking_outcomes (lead_analytics_id, user_id, outcome, meeting_id, attempts)"
	" SELECT $2, $1, 'scheduled', id, 1 FROM cur LIMIT 1"
	" ON CONFLICT (lead_analytics_id) DO UPDATE SET outcome = 'scheduled', reason = NULL, detail = NULL,"
	"  meeting_id = EXCLUDED.meeting_id, attempts = calendar_booking_outcomes.attempts + 1"
	"  WHERE calendar_booking_outcomes.user_id = EXCLUDED.user_id)"
	" SELECT cur.id, cur.ical_sequence, cur.google_event_id = $5, EXISTS (SELECT 1 FROM ins) FROM cur LIMIT 1";

/*
 * A manual create: booking_commit_current_sql that also stores the reply,
 * in the shape of the scheduler's replies (command.c says why in SQL), and
 * returns the meeting resource.
 */
static const char booking_commit_command_sql[] =
	"WITH ins AS (INSERT INTO calendar_meetings (user_id, lead_analytics_id, call_id, contact_id, google_event_id,"
	"  google_calendar_id, meeting_title, meeting_description, attendee_email, attendee_name,"
	"  meeting_start_time, meeting_end_time, meeting_duration_minutes, timezone, google_api_response,"
	"  meeting_metadata, booking_generation, meet_link, html_link, created_by, has_conflict, conflict_detail)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::timestamptz, $12::timestamptz, $13::int, $14,"
	"  $15::jsonb, $16::jsonb, $17::int, $18, $19, $1, $20::boolean, $21)"
	" ON CONFLICT DO NOTHING RETURNING *),"
	" cur AS (SELECT * FROM ins UNION ALL SELECT m.* FROM calendar_meetings m"
	"  WHERE m.lead_analytics_id = $2 AND m.status = 'scheduled' AND NOT EXISTS (SELECT 1 FROM ins)),"
	" outcome AS (INSERT INTO calendar_booking_outcomes (lead_analytics_id, user_id, outcome, meeting_id, attempts)"
	" SELECT $2, $1, 'scheduled', id, 1 FROM cur LIMIT 1"
	" ON CONFLICT (lead_analytics_id) DO UPDATE SET outcome = 'scheduled', reason = NULL, detail = NULL,"
	"  meeting_id = EXCLUDED.meeting_id, attempts = calendar_booking_outcomes.attempts + 1"
	"  WHERE calendar_booking_outcomes.user_id = EXCLUDED.user_id),"
	" cmd AS (INSERT INTO calendar_commands (command_id, user_id, command, reply)"
	"  SELECT $22::uuid, $1, 'create', jsonb_build_object('ok', true, 'command_id', $22::text,"
	"  'meeting', calendar_meeting_json(cur::calendar_meetings)) FROM cur LIMIT 1"
	"  ON CONFLICT DO NOTHING)"
	" SELECT cur.id, cur.ical_sequence, cur.google_event_id = $5, EXISTS (SELECT 1 FROM ins),"
	" calendar_meeting_json(cur::calendar_meetings)::text FROM cur LIMIT 1";

/* What every commit returns; a manual create's adds the meeting resource. */
enum { BC_ID, BC_SEQUENCE, BC_SAME_EVENT, BC_CREATED, BC_MEETING_JSON };

struct booking_job {
	struct scheduler *s;
	const struct booking *b;
	booking_cb cb;
	void *arg;
	char event_id[64];
	char *access_token;
	cJSON *event;		/* what we want Google to hold */
	cJSON *google;		/* what Google answered */
	bool refreshed;		/* a 401 was answered with one forced refresh already */
	bool lookup;		/* the plain insert found a row first: commit with booking_commit_current_sql */
	bool checked;		/* the slot was checked against the rep's calendar (whatever came of it) */
	const char *has_conflict;	/* "t", "f", or NULL when not known */
	char *conflict_detail;
	struct busy_list busy;	/* what the check found busy */
};

struct booking_deferred {
	void (*fn)(void *arg);
	void *arg;
};

static void booking_end(struct booking_job *job, const struct booking_result *r)
{
	job->cb(r, job->arg);
	cJSON_Delete(job->event);
	cJSON_Delete(job->google);
	xfree_secret(job->access_token);
	free(job->conflict_detail);
	busy_clear(&job->busy);
	free(job);
}

static void booking_finish(struct booking_job *job, enum booking_status status, const char *reason,
			   const char *detail)
{
	struct booking_result r = { .status = status, .reason = reason, .detail = detail };

	booking_end(job, &r);
}

static void booking_on_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct booking_deferred d = *(struct booking_deferred *)arg;

	(void)fd;
	(void)what;
	free(arg);
	d.fn(d.arg);
}

void booking_rate_limited(struct scheduler *s, const char *user_id, void (*fn)(void *arg), void *arg)
{
	int64_t wait_ms = ratelimit_take(s->rate, user_id, scheduler_now_ms());
	struct booking_deferred *d;
	struct timeval tv;

	if (wait_ms <= 0) {
		fn(arg);
		return;
	}
	d = xmalloc(sizeof(*d));
	d->fn = fn;
	d->arg = arg;
	tv.tv_sec = wait_ms / 1000;
	tv.tv_usec = (wait_ms % 1000) * 1000;
	event_base_once(s->env.base, -1, EV_TIMEOUT, booking_on_deferred, d, &tv);
}

/* Failure of a Google call, in the caller's words: transient, or refused for good. */
static void booking_google_failed(struct booking_job *job, const struct google_result *r, const char *op)
{
	char reason[64];

	snprintf(reason, sizeof(reason), "%s", r->reason ? r->reason : google_outcome_name(r->outcome));
	if (r->outcome == GOOGLE_TRANSIENT) {
		log_info("Google is unavailable for now; the booking will be retried", LOG_STR("op", op),
			 LOG_STR("lead", job->b->lead_id), LOG_INT("status", r->status), LOG_STR("reason", reason));
		booking_finish(job, BOOKING_TRANSIENT, reason, r->message);
		return;
	}
	log_warn("Google refused the booking", LOG_STR("op", op), LOG_STR("lead", job->b->lead_id),
		 LOG_INT("status", r->status), LOG_STR("reason", reason), LOG_STR("detail", r->message));
	booking_finish(job, BOOKING_REJECTED, reason, r->message ? r->message : "Google refused the event");
}

static void booking_on_discarded(const struct google_result *r, void *arg)
{
	struct booking_job *job = arg;

	if (r->outcome != GOOGLE_OK && r->outcome != GOOGLE_GONE)
		log_warn("could not delete a duplicate event; it stays in the user's calendar",
			 LOG_STR("event", job->event_id), LOG_INT("status", r->status));
	booking_finish(job, BOOKING_CONFLICT, "conflict", "the lead already has an active meeting");
}

/*
 * Another booking of the lead committed first (a manual create racing the
 * automatic one): the event made here is an orphan; remove it so the
 * attendee holds one invitation.
 */
static void booking_discard(void *arg)
{
	struct booking_job *job = arg;

	log_warn("the lead was booked concurrently; deleting the second event", LOG_STR("lead", job->b->lead_id),
		 LOG_STR("event", job->event_id));
	google_event_delete(job->s->google, job->access_token, job->b->calendar_id, job->event_id, "sendUpdates=all",
			    booking_on_discarded, job);
}

static void booking_commit(struct booking_job *job);

static void booking_on_committed(const struct db_result *r, void *arg)
{
	struct booking_job *job = arg;
	struct booking_result res = { 0 };
	const char *same_event;

	if (r->status != DB_OK) {
		log_warn("could not commit a meeting; the booking will be retried", LOG_STR("lead", job->b->lead_id),
			 LOG_STR("error", r->error));
		booking_finish(job, BOOKING_TRANSIENT, "database", r->error);
		return;
	}
	if (db_ntuples(r) == 0 && job->b->command_id == NULL && !job->lookup) {
		job->lookup = true;
		booking_commit(job);
		return;
	}
	if (db_ntuples(r) == 0) {
		booking_finish(job, BOOKING_CONFLICT, "conflict", "another meeting was booked for this lead");
		return;
	}
	same_event = db_value(r, 0, BC_SAME_EVENT);
	if (same_event == NULL || strcmp(same_event, "t") != 0) {
		booking_rate_limited(job->s, job->b->user_id, booking_discard, job);
		return;
	}
	res.status = BOOKING_DONE;
	res.meeting_id = db_value(r, 0, BC_ID);
	res.sequence = atoi(db_value(r, 0, BC_SEQUENCE));
	res.created = strcmp(db_value(r, 0, BC_CREATED), "t") == 0;
	res.meeting_json = job->b->command_id != NULL ? db_value(r, 0, BC_MEETING_JSON) : NULL;
	booking_end(job, &res);
}

static void booking_commit(struct booking_job *job)
{
	const struct booking *b = job->b;
	char start[40], end[40], duration[16], generation[16];
	char *response = cJSON_PrintUnformatted(job->google);
	const char *meet = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job->google, "hangoutLink"));
	const char *html = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job->google, "htmlLink"));
	const char *params[22];

	datetime_format(b->start_s, b->offset_s, start, sizeof(start));
	datetime_format(b->start_s + (int64_t)b->duration_minutes * 60, b->offset_s, end, sizeof(end));
	snprintf(duration, sizeof(duration), "%d", b->duration_minutes);
	snprintf(generation, sizeof(generation), "%d", b->generation);
	params[0] = b->user_id;
	params[1] = b->lead_id;
	params[2] = b->call_id;
	params[3] = b->contact_id;
	params[4] = job->event_id;
	params[5] = b->calendar_id;
	params[6] = b->title;
	params[7] = b->description;
	params[8] = b->attendee_email;
	params[9] = b->attendee_name;
	params[10] = start;
	params[11] = end;
	params[12] = duration;
	params[13] = b->time_zone;
	params[14] = response;
	params[15] = b->metadata_json;
	params[16] = generation;
	params[17] = meet;
	params[18] = html;
	params[19] = job->has_conflict;
	params[20] = job->conflict_detail;
	params[21] = b->command_id;
	if (b->command_id != NULL)
		db_query(job->s->env.db, booking_commit_command_sql, 22, params, booking_on_committed, job);
	else
		db_query(job->s->env.db, job->lookup ? booking_commit_current_sql : booking_commit_sql, 21, params,
			 booking_on_committed, job);
	cJSON_free(response);
}

static void booking_insert(void *arg);
static void booking_check(struct booking_job *job);

static void booking_on_token(enum tokens_status status, const char *token, void *arg)
{
	struct booking_job *job = arg;

	switch (status) {
	case TOKENS_OK:
		xfree_secret(job->access_token);
		job->access_token = xstrdup(token);
		if (!job->checked)
			booking_check(job);
		else
			booking_rate_limited(job->s, job->b->user_id, booking_insert, job);
		return;
	case TOKENS_NOT_CONNECTED:
		booking_finish(job, BOOKING_NOT_CONNECTED, "not_connected", "the user's calendar is not connected");
		return;
	case TOKENS_REVOKED:
		booking_finish(job, BOOKING_REVOKED, "grant_revoked", "the user revoked Google Calendar access");
		return;
	case TOKENS_TRANSIENT:
		booking_finish(job, BOOKING_TRANSIENT, "token", "could not obtain an access token");
		return;
	}
}

static bool booking_retry_auth(struct booking_job *job, const struct google_result *r)
{
	if (r->outcome != GOOGLE_UNAUTHORIZED || job->refreshed)
		return false;
	job->refreshed = true;
	tokens_get(job->s->tokens, job->b->user_id, true, booking_on_token, job);
	return true;
}

static void booking_on_restored(const struct google_result *r, void *arg)
{
	struct booking_job *job = arg;

	if (booking_retry_auth(job, r))
		return;
	if (r->outcome != GOOGLE_OK) {
		booking_google_failed(job, r, "events.patch");
		return;
	}
	cJSON_Delete(job->google);
	job->google = cJSON_Duplicate(r->json, 1);
	booking_commit(job);
}

static void booking_restore(void *arg)
{
	struct booking_job *job = arg;
	cJSON *patch = cJSON_Duplicate(job->event, 1);

	/* Google keeps a deleted event's id: un-delete it with the content we want. */
	cJSON_DeleteItemFromObjectCaseSensitive(patch, "id");
	cJSON_AddStringToObject(patch, "status", "confirmed");
	google_event_patch(job->s->google, job->access_token, job->b->calendar_id, job->event_id, patch, BOOKING_QUERY,
			   booking_on_restored, job);
	cJSON_Delete(patch);
}

static void booking_on_existing(const struct google_result *r, void *arg)
{
	struct booking_job *job = arg;
	const char *status;

	if (booking_retry_auth(job, r))
		return;
	if (r->outcome != GOOGLE_OK) {
		booking_google_failed(job, r, "events.get");
		return;
	}
	status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r->json, "status"));
	log_info("the event already exists at Google (an earlier attempt made it); adopting it",
		 LOG_STR("lead", job->b->lead_id), LOG_STR("event", job->event_id), LOG_STR("status", status));
	if (status != NULL && strcmp(status, "cancelled") == 0) {
		booking_rate_limited(job->s, job->b->user_id, booking_restore, job);
		return;
	}
	cJSON_Delete(job->google);
	job->google = cJSON_Duplicate(r->json, 1);
	booking_commit(job);
}

static void booking_get_existing(void *arg)
{
	struct booking_job *job = arg;

	google_event_get(job->s->google, job->access_token, job->b->calendar_id, job->event_id, booking_on_existing,
			 job);
}

/* Book the slot, with what the check found. */
static void booking_go(struct booking_job *job, const char *has_conflict, const char *detail)
{
	job->checked = true;
	job->has_conflict = has_conflict;
	job->conflict_detail = detail != NULL ? xstrdup(detail) : NULL;
	booking_rate_limited(job->s, job->b->user_id, booking_insert, job);
}

static void booking_busy(struct booking_job *job)
{
	char *spans = busy_to_text(&job->busy, job->b->time_zone, 5);
	struct booking_result r = { .status = BOOKING_BUSY, .reason = "conflict", .detail = spans, .busy = &job->busy };

	log_info("the rep is busy at the lead's time; not booking over it", LOG_STR("lead", job->b->lead_id),
		 LOG_STR("busy", spans), LOG_STR("trace", job->b->trace));
	booking_end(job, &r);
	free(spans);
}

/*
 * The slot is busy: unless the busy time is this booking's own event (made
 * by an attempt that died before its commit), book over it if allowed.
 */
static void booking_on_own_event(const struct google_result *r, void *arg)
{
	struct booking_job *job = arg;
	const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r->json, "status"));
	char *spans;

	if (booking_retry_auth(job, r))
		return;
	if (r->outcome == GOOGLE_OK && (status == NULL || strcmp(status, "cancelled") != 0)) {
		log_info("the busy time includes the lead's own event (an earlier attempt made it); adopting it",
			 LOG_STR("lead", job->b->lead_id), LOG_STR("event", job->event_id));
		job->checked = true;
		job->google = cJSON_Duplicate(r->json, 1);
		booking_commit(job);
		return;
	}
	if (r->outcome != GOOGLE_OK && r->outcome != GOOGLE_NOT_FOUND) {
		booking_google_failed(job, r, "events.get");
		return;
	}
	if (!job->b->allow_conflict) {
		booking_busy(job);
		return;
	}
	spans = busy_to_text(&job->busy, job->b->time_zone, 5);
	log_info("booking over the rep's busy time, as allowed", LOG_STR("lead", job->b->lead_id),
		 LOG_STR("busy", spans), LOG_STR("trace", job->b->trace));
	booking_go(job, "t", spans);
	free(spans);
}

static void booking_get_own_event(void *arg)
{
	struct booking_job *job = arg;

	google_event_get(job->s->google, job->access_token, job->b->calendar_id, job->event_id, booking_on_own_event,
			 job);
}

static void booking_on_checked(const struct conflict_result *r, void *arg)
{
	struct booking_job *job = arg;

	switch (r->status) {
	case CONFLICT_FREE:
		booking_go(job, "f", NULL);
		return;
	case CONFLICT_UNCHECKED:
		booking_go(job, NULL, r->detail);
		return;
	case CONFLICT_BUSY:
		busy_clear(&job->busy);
		for (size_t i = 0; i < r->busy->n; i++)
			busy_add(&job->busy, r->busy->spans[i].start_s, r->busy->spans[i].end_s);
		booking_rate_limited(job->s, job->b->user_id, booking_get_own_event, job);
		return;
	case CONFLICT_UNAUTHORIZED:
		if (!job->refreshed) {
			job->refreshed = true;
			tokens_get(job->s->tokens, job->b->user_id, true, booking_on_token, job);
			return;
		}
		booking_finish(job, BOOKING_REJECTED, "unauthorized", "Google refused a freshly refreshed token");
		return;
	case CONFLICT_TRANSIENT:
		log_info("Google is unavailable for now; the booking will be retried", LOG_STR("op", "freebusy.query"),
			 LOG_STR("lead", job->b->lead_id), LOG_STR("reason", r->reason));
		booking_finish(job, BOOKING_TRANSIENT, r->reason, r->detail);
		return;
	}
}

static void booking_check(struct booking_job *job)
{
	const struct booking *b = job->b;
	struct conflict_slot slot = {
		.user_id = b->user_id,
		.access_token = job->access_token,
		.calendar_id = b->calendar_id,
		.start_s = b->start_s,
		.end_s = b->start_s + (int64_t)b->duration_minutes * 60,
	};

	conflict_check(job->s, &slot, booking_on_checked, job);
}

static void booking_on_inserted(const struct google_result *r, void *arg)
{
	struct booking_job *job = arg;

	if (booking_retry_auth(job, r))
		return;
	if (r->outcome == GOOGLE_DUPLICATE) {
		booking_rate_limited(job->s, job->b->user_id, booking_get_existing, job);
		return;
	}
	if (r->outcome != GOOGLE_OK) {
		booking_google_failed(job, r, "events.insert");
		return;
	}
	job->google = cJSON_Duplicate(r->json, 1);
	booking_commit(job);
}

static void booking_insert(void *arg)
{
	struct booking_job *job = arg;

	google_event_insert(job->s->google, job->access_token, job->b->calendar_id, job->event, BOOKING_QUERY,
			    booking_on_inserted, job);
}

void booking_run(struct scheduler *s, const struct booking *b, const struct tokens_stored *stored, booking_cb cb,
		 void *arg)
{
	struct booking_job *job = xcalloc(1, sizeof(*job));
	struct calevent_spec spec = { 0 };
	char request_id[80];

	job->s = s;
	job->b = b;
	job->cb = cb;
	job->arg = arg;
	if (calevent_id_for(b->lead_id, b->generation, job->event_id, sizeof(job->event_id)) < 0) {
		booking_finish(job, BOOKING_REJECTED, "bad_lead_id", "the lead id is not a UUID");
		return;
	}
	/* Stable for every retry of this booking, new for each later change. */
	snprintf(request_id, sizeof(request_id), "%s-c0", job->event_id);
	spec.event_id = job->event_id;
	spec.title = b->title;
	spec.description = b->description;
	spec.start_s = b->start_s;
	spec.offset_s = b->offset_s;
	spec.duration_minutes = b->duration_minutes;
	spec.time_zone = b->time_zone;
	spec.attendee_email = b->attendee_email;
	spec.attendee_name = b->attendee_name;
	spec.lead_analytics_id = b->lead_id;
	spec.generation = b->generation;
	spec.meet_request_id = s->env.cfg->meet_links ? request_id : NULL;
	job->event = calevent_build(&spec);
	if (stored != NULL)
		tokens_get_stored(s->tokens, b->user_id, stored, booking_on_token, job);
	else
		tokens_get(s->tokens, b->user_id, false, booking_on_token, job);
}
