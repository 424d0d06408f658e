/*
 * syncapply: one event of Google's against the user's meetings (sync.h).
 *
 * Only an event that is the google_event_id of one of the user's scheduled
 * meetings on the synced calendar counts; everything else (the rep's own
 * events, an event the platform is still inserting, meetings already
 * completed or cancelled) is skipped. One statement decides and applies the
 * change, so it happens at most once however often the event is listed:
 *
 *   echo       same start and end instants, not cancelled, the lead's answer
 *              as stored: the platform's own write coming back; nothing.
 *   moved      the row becomes `rescheduled` and a new row, copied from it
 *              as a platform reschedule makes one (cmd-reschedule.c), holds
 *              Google's times; nothing is written back to Google. An event
 *              made all-day runs from midnight of its first day to midnight
 *              of its end date in the calendar's zone (calevent_read_when()).
 *   cancelled  (the event is cancelled, or a full list lacks it) the row is
 *              `cancelled`, "Deleted in Google Calendar"; the event is not
 *              made again.
 *   answered   the lead's responseStatus differs from the row's: stored and
 *              counted (attendee_response_changes, which names each
 *              decline's mail); a decline mails the owner and cancels nothing.
 *
 * Rows created or ended by a Google change say change_source 'google'.
 * A change is not applied, and the run is told to try again later
 * (SYNCAPPLY_WAIT), while a platform command holds the meeting
 * (sync_hold_until, set by command_load_meeting() and cleared by the
 * command's commit) or when the row was written after the run began: the
 * list the run holds may predate that write, and applying it would undo it.
 *
 * A change that owes a mail records which in sync_mail_pending in the same
 * statement; the mail job is published after the commit and the mark is
 * cleared once the broker confirmed it. A crash in between leaves the mark,
 * and the next run of the user publishes it again first (the message_id is
 * the change's, so the mailer sends one mail).
 */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <event2/event.h>

#include "calevent.h"
#include "datetime.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "scheduler.h"
#include "sync.h"
#include "xmalloc.h"

/* A moved event's answer is applied to the new row in a second pass; more passes mean something is wrong. */
#define SYNCAPPLY_MAX_PASSES 3

/*
 * $1 user, $2 calendar, $3 event id, $4 cancelled, $5 $6 Google's start and
 * end (NULL when cancelled), $7 its attendees (a JSON array or NULL), $8 the
 * run's start, $9 the row this event's previous pass made (NULL at first),
 * $10 the event as Google answered it, $11 $12 its Meet and html links.
 * FOR UPDATE makes a concurrent statement on the same meeting wait and then
 * see this one's result, so two runs (a lost claim) cannot both apply it.
 */
static const char syncapply_sql[] =
	"WITH m AS (SELECT c.id, c.meeting_start_time, c.meeting_end_time, c.attendee_response_status,"
	"  c.sync_hold_until, c.sync_mail_pending, c.updated_at,"
	"  (SELECT a.v->>'responseStatus' FROM jsonb_array_elements(COALESCE($7::jsonb, '[]'::jsonb)) AS a(v)"
	"   WHERE lower(a.v->>'email') = lower(c.attendee_email)"
	"   AND a.v->>'responseStatus' IN ('needsAction', 'accepted', 'declined', 'tentative') LIMIT 1) AS answer"
	"  FROM calendar_meetings c WHERE c.user_id = $1 AND c.google_calendar_id = $2 AND c.google_event_id = $3"
	"  AND c.status = 'scheduled' FOR UPDATE OF c),"
	" k AS (SELECT m.*, CASE WHEN $4::boolean THEN 'cancelled'"
	"  WHEN m.meeting_start_time <> $5::timestamptz OR m.meeting_end_time <> $6::timestamptz THEN 'moved'"
	"  WHEN m.answer IS NULL OR m.answer = m.attendee_response_status THEN 'echo'"
	"  WHEN m.attendee_response_status IS NULL AND m.answer = 'needsAction' THEN 'seen'"
	"  WHEN m.answer = 'declined' THEN 'declined' ELSE 'answered' END AS change FROM m),"
	" g AS (SELECT k.*, CASE WHEN k.change = 'echo' THEN 'echo'"
	"  WHEN k.sync_hold_until > now() THEN 'hold'"
	"  WHEN k.sync_mail_pending IS NOT NULL THEN 'pending'"
	"  WHEN k.updated_at >= $8::timestamptz AND k.id IS DISTINCT FROM $9::uuid THEN 'stale'"
	"  ELSE k.change END AS act FROM k),"
	" cancel AS (UPDATE calendar_meetings c SET status = 'cancelled',"
	"  cancellation_reason = 'Deleted in Google Calendar', change_source = 'google',"
	"  ical_sequence = c.ical_sequence + 1, sync_mail_pending = 'cancelled'"
	"  FROM g WHERE c.id = g.id AND g.act = 'cancelled' RETURNING c.*),"
	" old AS (UPDATE calendar_meetings c SET status = 'rescheduled', change_source = 'google'"
	"  FROM g WHERE c.id = g.id AND g.act = 'moved' RETURNING c.*),"
	" ins AS (INSERT INTO calendar_meetings (user_id, lead_analytics_id, call_id, contact_id, google_event_id,"
	"  google_calendar_id, meeting_title, meeting_description, attendee_email, attendee_name,"
	"  meeting_start_time, meeting_end_time, meeting_duration_minutes, timezone, status,"
	"  rescheduled_from_meeting_id, google_api_response, meeting_metadata, created_by, booking_generation,"
	"  ical_sequence, meet_link, html_link, has_conflict, conflict_detail, attendee_response_status,"
	"  change_source, sync_mail_pending)"
	"  SELECT user_id, lead_analytics_id, call_id, contact_id, google_event_id, google_calendar_id,"
	"  meeting_title, meeting_description, attendee_email, attendee_name, $5::timestamptz, $6::timestamptz,"
	"  round(extract(epoch FROM $6::timestamptz - $5::timestamptz) / 60)::int, timezone, 'scheduled', id,"
	"  $10::jsonb, meeting_metadata, created_by, booking_generation, ical_sequence + 1,"
	"  COALESCE($11, meet_link), COALESCE($12, html_link), NULL, NULL, attendee_response_status,"
	"  'google', 'rescheduled' FROM old RETURNING *),"
	" outcome AS (UPDATE calendar_booking_outcomes o SET meeting_id = ins.id FROM ins"
	"  WHERE o.lead_analytics_id = ins.lead_analytics_id AND o.user_id = ins.user_id),"
	" ans AS (UPDATE calendar_meetings c SET attendee_response_status = g.answer,"
	"  attendee_response_changes = c.attendee_response_changes + CASE WHEN g.act = 'seen' THEN 0 ELSE 1 END,"
	"  sync_mail_pending = CASE WHEN g.act = 'declined' THEN 'declined' ELSE c.sync_mail_pending END"
	"  FROM g WHERE c.id = g.id AND g.act IN ('answered', 'declined', 'seen') RETURNING c.*),"
	" done AS (SELECT id, sync_mail_pending, rescheduled_from_meeting_id, ical_sequence, cancellation_reason,"
	"  attendee_response_changes, attendee_response_status FROM cancel"
	"  UNION ALL SELECT id, sync_mail_pending, rescheduled_from_meeting_id, ical_sequence, cancellation_reason,"
	"  attendee_response_changes, attendee_response_status FROM ins"
	"  UNION ALL SELECT id, sync_mail_pending, rescheduled_from_meeting_id, ical_sequence, cancellation_reason,"
	"  attendee_response_changes, attendee_response_status FROM ans)"
	" SELECT g.act, g.id, done.id, done.sync_mail_pending, done.rescheduled_from_meeting_id, done.ical_sequence,"
	"  done.cancellation_reason, done.attendee_response_changes, done.attendee_response_status"
	" FROM g LEFT JOIN done ON TRUE";

enum { AC_ACT, AC_MEETING, AC_ROW, AC_MAIL, AC_PREVIOUS, AC_SEQUENCE, AC_REASON, AC_CHANGES, AC_ANSWER };

/* The changes whose mails are still owed: the same columns as the change's own answer, from AC_ROW on. */
static const char syncapply_pending_sql[] =
	"SELECT id, sync_mail_pending, rescheduled_from_meeting_id, ical_sequence, cancellation_reason,"
	" attendee_response_changes FROM calendar_meetings WHERE user_id = $1 AND sync_mail_pending IS NOT NULL"
	" ORDER BY updated_at";

enum { PC_ROW, PC_MAIL, PC_PREVIOUS, PC_SEQUENCE, PC_REASON, PC_CHANGES };

/* Cleared only if it still owes this very mail: a newer decline (another count) keeps its own mark. */
static const char syncapply_mailed_sql[] =
	"UPDATE calendar_meetings SET sync_mail_pending = NULL WHERE id = $1 AND sync_mail_pending = $2"
	" AND (sync_mail_pending <> 'declined' OR attendee_response_changes = $3::int)";

/* A mail a committed change owes: the columns it is built from, copied out of the result. */
struct syncapply_mail {
	char *row, *kind, *previous, *reason;
	int sequence;		/* ical_sequence; for a decline, attendee_response_changes */
};

struct syncapply_job {
	struct scheduler *s;
	const struct syncapply_target *t;
	syncapply_cb cb;
	void *arg;
	char *event_id;
	bool cancelled;
	char start[40], end[40];
	char *attendees, *json;
	const char *meet, *html;	/* into the caller's event */
	char *own;			/* the row the previous pass made */
	int passes;
	struct syncapply_mail mail;
	/* Republishing: mails still to confirm and clear, and the worst outcome among them. */
	unsigned outstanding;
	enum syncapply_status status;
};

static void syncapply_mail_release(struct syncapply_mail *m)
{
	free(m->row);
	free(m->kind);
	free(m->previous);
	free(m->reason);
	memset(m, 0, sizeof(*m));
}

static void syncapply_finish(struct syncapply_job *job, enum syncapply_status status)
{
	syncapply_cb cb = job->cb;
	void *arg = job->arg;

	free(job->event_id);
	free(job->attendees);
	free(job->json);
	free(job->own);
	syncapply_mail_release(&job->mail);
	free(job);
	cb(status, arg);
}

static void syncapply_count(const char *change)
{
	metric_inc(metrics_counter("scheduler_sync_changes_total",
				   "Google Calendar changes a sync met in the users' meetings, by what it did.",
				   "change", change, NULL));
}

/* The mail job of a change, as mailjob_publish() takes it (proto/messages/mail.job.schema.json). */
static void syncapply_publish(struct scheduler *s, const char *user_id, const struct syncapply_mail *m,
			      mq_confirm_cb done, void *arg)
{
	struct mailjob mail = {
		.kind = m->kind,
		.user_id = user_id,
		.meeting_id = m->row,
		.sequence = m->sequence,
	};

	if (strcmp(m->kind, "rescheduled") == 0)
		mail.previous_meeting_id = m->previous;
	else if (strcmp(m->kind, "cancelled") == 0)
		mail.reason = m->reason;
	mailjob_publish(s, &mail, done, arg);
}

/* The mail columns starting at col of row into m (fresh copies). */
static void syncapply_mail_from(const struct db_result *r, int row, int col, struct syncapply_mail *m)
{
	const char *previous = db_value(r, row, col + 2), *reason = db_value(r, row, col + 4);
	const char *kind = db_value(r, row, col + 1);

	m->row = xstrdup(db_value(r, row, col));
	m->kind = xstrdup(kind);
	m->previous = previous ? xstrdup(previous) : NULL;
	m->reason = reason ? xstrdup(reason) : NULL;
	m->sequence = atoi(db_value(r, row, strcmp(kind, "declined") == 0 ? col + 5 : col + 3));
}

static void syncapply_run(struct syncapply_job *job);

static void syncapply_on_mailed(const struct db_result *r, void *arg)
{
	struct syncapply_job *job = arg;

	if (r->status != DB_OK) {
		/* The mark stays: the next run publishes the mail again, and the mailer drops the copy. */
		log_warn("could not clear a sync change's mail mark", LOG_STR("meeting", job->mail.row),
			 LOG_STR("error", r->error));
		syncapply_finish(job, SYNCAPPLY_FAILED);
		return;
	}
	if (strcmp(job->mail.kind, "rescheduled") == 0 && ++job->passes < SYNCAPPLY_MAX_PASSES) {
		/* The same event against the row it just made: the lead's answer may have changed too. */
		free(job->own);
		job->own = xstrdup(job->mail.row);
		syncapply_mail_release(&job->mail);
		syncapply_run(job);
		return;
	}
	syncapply_finish(job, SYNCAPPLY_DONE);
}

static void syncapply_on_published(enum mq_confirm outcome, void *arg)
{
	struct syncapply_job *job = arg;
	char changes[16];
	const char *params[] = { job->mail.row, job->mail.kind, changes };

	if (scheduler_closing(job->s)) {
		syncapply_finish(job, SYNCAPPLY_FAILED);
		return;
	}
	if (outcome != MQ_CONFIRM_ACK) {
		log_warn("a sync change's mail job was not confirmed; the next run publishes it again",
			 LOG_STR("meeting", job->mail.row), LOG_STR("kind", job->mail.kind));
		syncapply_finish(job, SYNCAPPLY_FAILED);
		return;
	}
	snprintf(changes, sizeof(changes), "%d", job->mail.sequence);
	db_query(job->s->env.db, syncapply_mailed_sql, 3, params, syncapply_on_mailed, job);
}

static void syncapply_on_applied(const struct db_result *r, void *arg)
{
	struct syncapply_job *job = arg;
	const char *act, *meeting;

	if (scheduler_closing(job->s)) {
		syncapply_finish(job, SYNCAPPLY_FAILED);
		return;
	}
	/* Class 40 (a deadlock, a serialization failure) is a race lost, not a statement refused. */
	if (r->status == DB_UNAVAILABLE ||
	    (r->status == DB_ERROR && r->sqlstate != NULL && strncmp(r->sqlstate, "40", 2) == 0)) {
		syncapply_finish(job, SYNCAPPLY_FAILED);
		return;
	}
	if (r->status != DB_OK) {
		/* The statement itself is refused: repeating it cannot help, so this event is passed over. */
		log_error("could not apply a Google Calendar change", LOG_STR("user", job->t->user_id),
			  LOG_STR("event", job->event_id), LOG_STR("error", r->error));
		syncapply_finish(job, SYNCAPPLY_DONE);
		return;
	}
	if (db_ntuples(r) == 0) {
		syncapply_finish(job, SYNCAPPLY_DONE);
		return;
	}
	act = db_value(r, 0, AC_ACT);
	meeting = db_value(r, 0, AC_MEETING);
	if (strcmp(act, "echo") == 0) {
		syncapply_count("echo");
		syncapply_finish(job, SYNCAPPLY_DONE);
		return;
	}
	if (strcmp(act, "hold") == 0 || strcmp(act, "pending") == 0 || strcmp(act, "stale") == 0) {
		/* hold: a command is changing it at Google; stale: written since the run's list; pending: mail owed. */
		log_info("a Google Calendar change waits for the next run",
			 LOG_STR("user", job->t->user_id), LOG_STR("meeting", meeting), LOG_STR("event", job->event_id),
			 LOG_STR("why", act));
		syncapply_finish(job, SYNCAPPLY_WAIT);
		return;
	}
	if (strcmp(act, "seen") != 0)
		syncapply_count(act);
	log_info(strcmp(act, "seen") == 0 ? "sync noted the lead's answer" : "sync applied a Google Calendar change",
		 LOG_STR("user", job->t->user_id), LOG_STR("meeting", meeting), LOG_STR("event", job->event_id),
		 LOG_STR("change", act),
		 LOG_STR("new_meeting", strcmp(act, "moved") == 0 ? db_value(r, 0, AC_ROW) : NULL),
		 LOG_STR("response", db_value(r, 0, AC_ANSWER)));
	if (db_value(r, 0, AC_MAIL) == NULL) {
		syncapply_finish(job, SYNCAPPLY_DONE);
		return;
	}
	syncapply_mail_from(r, 0, AC_ROW, &job->mail);
	syncapply_publish(job->s, job->t->user_id, &job->mail, syncapply_on_published, job);
}

static void syncapply_run(struct syncapply_job *job)
{
	const char *params[] = {
		job->t->user_id, job->t->calendar_id, job->event_id, job->cancelled ? "t" : "f",
		job->cancelled ? NULL : job->start, job->cancelled ? NULL : job->end, job->attendees,
		job->t->run_start, job->own, job->json, job->meet, job->html,
	};

	db_query(job->s->env.db, syncapply_sql, 12, params, syncapply_on_applied, job);
}

static struct syncapply_job *syncapply_job_new(struct scheduler *s, const struct syncapply_target *t,
					       syncapply_cb cb, void *arg)
{
	struct syncapply_job *job = xcalloc(1, sizeof(*job));

	job->s = s;
	job->t = t;
	job->cb = cb;
	job->arg = arg;
	return job;
}

/* cb later rather than now: the caller's loop over a page must not recurse through every skipped event. */
static void syncapply_on_skipped(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	syncapply_finish(arg, SYNCAPPLY_DONE);
}

static void syncapply_skip(struct syncapply_job *job)
{
	event_base_once(job->s->env.base, -1, EV_TIMEOUT, syncapply_on_skipped, job, &(struct timeval){ 0, 0 });
}

void syncapply_event(struct scheduler *s, const struct syncapply_target *t, const cJSON *event, syncapply_cb cb,
		     void *arg)
{
	struct syncapply_job *job = syncapply_job_new(s, t, cb, arg);
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(event, "id"));
	const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(event, "status"));
	const cJSON *attendees = cJSON_GetObjectItemCaseSensitive(event, "attendees");
	int64_t start_s, end_s;

	job->event_id = xstrdup(id ? id : "");
	job->cancelled = status != NULL && strcmp(status, "cancelled") == 0;
	if (!job->cancelled) {
		if (calevent_read_when(cJSON_GetObjectItemCaseSensitive(event, "start"), t->zone, &start_s) < 0 ||
		    calevent_read_when(cJSON_GetObjectItemCaseSensitive(event, "end"), t->zone, &end_s) < 0 ||
		    end_s <= start_s) {
			log_warn("an event's times are unreadable; the sync passes it over",
				 LOG_STR("user", t->user_id),
				 LOG_STR("event", job->event_id));
			syncapply_skip(job);
			return;
		}
		datetime_format(start_s, 0, job->start, sizeof(job->start));
		datetime_format(end_s, 0, job->end, sizeof(job->end));
		job->json = cJSON_PrintUnformatted(event);
		job->meet = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(event, "hangoutLink"));
		job->html = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(event, "htmlLink"));
		if (cJSON_IsArray(attendees))
			job->attendees = cJSON_PrintUnformatted(attendees);
	}
	syncapply_run(job);
}

void syncapply_missing(struct scheduler *s, const struct syncapply_target *t, const char *event_id, syncapply_cb cb,
		       void *arg)
{
	struct syncapply_job *job = syncapply_job_new(s, t, cb, arg);

	job->event_id = xstrdup(event_id);
	job->cancelled = true;
	syncapply_run(job);
}

/* Republishing: one mail confirmed and cleared (or not); the last one answers the run. */
static void syncapply_republished(struct syncapply_job *job, enum syncapply_status status)
{
	if (status != SYNCAPPLY_DONE)
		job->status = status;
	if (--job->outstanding == 0)
		syncapply_finish(job, job->status);
}

struct syncapply_resend {
	struct syncapply_job *job;
	struct syncapply_mail mail;
};

static void syncapply_resend_free(struct syncapply_resend *rs, enum syncapply_status status)
{
	struct syncapply_job *job = rs->job;

	syncapply_mail_release(&rs->mail);
	free(rs);
	syncapply_republished(job, status);
}

static void syncapply_on_remailed(const struct db_result *r, void *arg)
{
	struct syncapply_resend *rs = arg;

	if (r->status != DB_OK)
		log_warn("could not clear a sync change's mail mark", LOG_STR("meeting", rs->mail.row),
			 LOG_STR("error", r->error));
	syncapply_resend_free(rs, r->status == DB_OK ? SYNCAPPLY_DONE : SYNCAPPLY_FAILED);
}

static void syncapply_on_republished(enum mq_confirm outcome, void *arg)
{
	struct syncapply_resend *rs = arg;
	char changes[16];
	const char *params[] = { rs->mail.row, rs->mail.kind, changes };

	if (outcome != MQ_CONFIRM_ACK || scheduler_closing(rs->job->s)) {
		syncapply_resend_free(rs, SYNCAPPLY_FAILED);
		return;
	}
	snprintf(changes, sizeof(changes), "%d", rs->mail.sequence);
	db_query(rs->job->s->env.db, syncapply_mailed_sql, 3, params, syncapply_on_remailed, rs);
}

static void syncapply_on_pending(const struct db_result *r, void *arg)
{
	struct syncapply_job *job = arg;
	int n = r->status == DB_OK ? db_ntuples(r) : 0;

	if (r->status != DB_OK || scheduler_closing(job->s)) {
		syncapply_finish(job, SYNCAPPLY_FAILED);
		return;
	}
	/* Counted before the first publish, which may confirm (as lost) before the loop ends. */
	job->outstanding = (unsigned)n + 1;
	for (int i = 0; i < n; i++) {
		struct syncapply_resend *rs = xcalloc(1, sizeof(*rs));

		rs->job = job;
		syncapply_mail_from(r, i, PC_ROW, &rs->mail);
		log_info("publishing a sync change's mail again", LOG_STR("user", job->t->user_id),
			 LOG_STR("meeting", rs->mail.row), LOG_STR("kind", rs->mail.kind));
		syncapply_publish(job->s, job->t->user_id, &rs->mail, syncapply_on_republished, rs);
	}
	syncapply_republished(job, SYNCAPPLY_DONE);
}

void syncapply_republish(struct scheduler *s, const struct syncapply_target *t, syncapply_cb cb, void *arg)
{
	struct syncapply_job *job = syncapply_job_new(s, t, cb, arg);
	const char *params[] = { t->user_id };

	job->status = SYNCAPPLY_DONE;
	db_query(s->env.db, syncapply_pending_sql, 1, params, syncapply_on_pending, job);
}
