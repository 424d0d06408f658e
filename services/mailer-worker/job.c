/*
 * job: one mail job, from delivery to ack.
 *
 *	parse -> claim and load -> compose and send -> record `sent` -> ack
 *
 * The commit point is mail_deliveries, keyed by the job's message_id
 * (docs/architecture.md, "Guarantees"). The claim records `sending` (attempts + 1) before
 * any SMTP; a job whose record says `sent` is a duplicate and is acked
 * without a mail. A `sending` record is a lease: another copy of the same
 * job (a redelivery racing the first) waits in a retry tier instead of
 * sending too, and a lease left behind by a crash runs out after
 * JOB_LEASE_S, so the mail still goes out. Only a crash inside the SMTP
 * exchange itself can send a mail twice.
 *
 * After the server's 250, one statement records `sent` and marks the
 * meeting's invite or reminder as mailed; the ack follows. A 4xx or a lost
 * connection goes through the retry tiers (recorded `failed` with the reason
 * meanwhile; the next attempt claims it again); a 5xx to the message is
 * final: `failed` and a dead letter `smtp_rejected` with the server's reply.
 * A job that can never be mailed (malformed, unknown meeting, lead or user,
 * bad owner address) is dead-lettered at once with its reason. Nothing here
 * ever changes a meeting beyond its *_email_sent columns.
 *
 * A reminder of a meeting no longer scheduled, a conflict mail of a lead
 * whose outcome is no longer skipped/conflict (someone booked it since), and
 * a declined mail whose decline is no longer the lead's latest answer (they
 * accepted again, or answered since) or whose meeting is no longer
 * scheduled, are not sent: the job is recorded
 * `failed` with why and acked, so a later job with the same id (the lead
 * skipped for a conflict again) still mails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <event2/event.h>

#include "cfg.h"
#include "compose.h"
#include "content.h"
#include "db.h"
#include "header.h"
#include "jobspec.h"
#include "log.h"
#include "mailer.h"
#include "metrics.h"
#include "retry.h"
#include "smtp.h"
#include "text.h"
#include "xmalloc.h"

/* How long a `sending` claim holds off other copies: longer than one whole attempt may take. */
#define JOB_LEASE_S (SMTP_TIMEOUT_MS / 1000 + 60)
/* Recording `sent` while the database is down: tries, the first pause doubling each time. */
#define JOB_RECORD_TRIES 6
#define JOB_RECORD_PAUSE_MS 500
#define JOB_ERROR_MAX 1000

/*
 * The claim and, when it succeeds, the load (JOB_LOAD_SQL below) in one
 * statement: one round trip to the server per mail instead of two. The
 * load's columns come first (COL_*), then the claim's outcome: 'claimed',
 * or the record's status with its attempts and the milliseconds left of
 * another copy's lease; and whether the user exists (the load's one row).
 * A statement that fails takes its claim back with it.
 */
#define JOB_CLAIM_SQL(load) \
	"WITH claim AS (" \
	" INSERT INTO mail_deliveries (message_id, kind, meeting_id, user_id, status, attempts)" \
	" VALUES ($6, $7, (SELECT id FROM calendar_meetings WHERE id = $2::uuid)," \
	"  (SELECT id FROM users WHERE id = $1::uuid), 'sending', 1)" \
	" ON CONFLICT (message_id) DO UPDATE SET status = 'sending', attempts = mail_deliveries.attempts + 1" \
	" WHERE mail_deliveries.status = 'failed' OR (mail_deliveries.status = 'sending'" \
	"  AND mail_deliveries.updated_at < now() - make_interval(secs => $8::int))" \
	" RETURNING attempts)," \
	" st AS (" \
	" SELECT 'claimed' AS status, attempts, 0::bigint AS wait_ms FROM claim" \
	" UNION ALL" \
	" SELECT status, attempts," \
	"  CEIL(EXTRACT(EPOCH FROM updated_at + make_interval(secs => $8::int) - now()) * 1000)::bigint" \
	" FROM mail_deliveries WHERE message_id = $6 AND NOT EXISTS (SELECT 1 FROM claim))" \
	" SELECT l.*, st.status, st.attempts, st.wait_ms, l.found IS NOT NULL FROM st" \
	" LEFT JOIN LATERAL (" load " AND st.status = 'claimed') l ON TRUE"

/*
 * The owner always; the meeting, the one it replaced and the lead when the
 * job names them; for a job without a meeting (a conflict) also the lead's
 * outcome and the contact its phone number finds (name and email, as the
 * scheduler reads them), joined only then so meeting mails read as before.
 * $5 is DEFAULT_TIMEZONE, the zone the scheduler used for an owner whose
 * calendar zone is unknown.
 */
#define JOB_LOAD_SQL \
	"SELECT u.email, u.name, u.google_email, COALESCE(u.google_calendar_timezone, $5)," \
	" EXTRACT(EPOCH FROM u.google_disconnected_at)::bigint, u.google_disconnect_reason," \
	" m.id, m.google_event_id, m.meeting_title, m.meeting_description, m.attendee_email, m.attendee_name," \
	" EXTRACT(EPOCH FROM m.meeting_start_time)::bigint, EXTRACT(EPOCH FROM m.meeting_end_time)::bigint," \
	" COALESCE(m.timezone, u.google_calendar_timezone), m.status, m.cancellation_reason, m.ical_sequence," \
	" m.meet_link, m.html_link," \
	" p.id, EXTRACT(EPOCH FROM p.meeting_start_time)::bigint, EXTRACT(EPOCH FROM p.meeting_end_time)::bigint," \
	" COALESCE(p.timezone, m.timezone, u.google_calendar_timezone)," \
	" la.id, COALESCE(NULLIF(la.extracted_name, ''), m.attendee_name, NULLIF(c.name, '')), la.company_name," \
	" COALESCE(la.phone_number, ca.phone_number), la.lead_status_tag, la.reasoning::text, la.smart_notification," \
	" ca.id, ca.recording_url, EXTRACT(EPOCH FROM now())::bigint," \
	" m.has_conflict, m.conflict_detail, COALESCE(NULLIF(c.email, ''), la.extracted_email)," \
	" o.outcome, o.reason, o.detail, EXTRACT(EPOCH FROM o.requested_start)::bigint," \
	" EXTRACT(EPOCH FROM o.requested_end)::bigint, o.busy::text," \
	" m.attendee_response_status, m.attendee_response_changes, m.change_source, TRUE AS found" \
	" FROM users u" \
	" LEFT JOIN calendar_meetings m ON m.id = $2::uuid AND m.user_id = u.id" \
	" LEFT JOIN calendar_meetings p ON p.id = COALESCE($3::uuid, m.rescheduled_from_meeting_id)" \
	"  AND p.user_id = u.id" \
	" LEFT JOIN lead_analytics la ON la.id = COALESCE(m.lead_analytics_id, $4::uuid) AND la.user_id = u.id" \
	" LEFT JOIN calls ca ON ca.id = COALESCE(m.call_id, la.call_id)" \
	" LEFT JOIN LATERAL (SELECT name, email FROM contacts" \
	"  WHERE user_id = u.id AND phone_number = la.phone_number AND m.id IS NULL" \
	"  ORDER BY (email IS NULL OR email = ''), updated_at DESC NULLS LAST LIMIT 1) c ON TRUE" \
	" LEFT JOIN calendar_booking_outcomes o ON o.lead_analytics_id = la.id AND o.user_id = u.id AND m.id IS NULL" \
	" WHERE u.id = $1::uuid"

static const char job_claim_sql[] = JOB_CLAIM_SQL(JOB_LOAD_SQL);

enum {
	COL_EMAIL, COL_OWNER_NAME, COL_GOOGLE_EMAIL, COL_USER_ZONE, COL_DISCONNECTED_AT, COL_DISCONNECT_REASON,
	COL_M_ID, COL_M_EVENT, COL_M_TITLE, COL_M_DESCRIPTION, COL_M_ATTENDEE_EMAIL, COL_M_ATTENDEE_NAME,
	COL_M_START, COL_M_END, COL_M_ZONE, COL_M_STATUS, COL_M_CANCEL_REASON, COL_M_SEQUENCE, COL_M_MEET,
	COL_M_HTML, COL_P_ID, COL_P_START, COL_P_END, COL_P_ZONE, COL_LEAD_ID, COL_LEAD_NAME, COL_LEAD_COMPANY,
	COL_LEAD_PHONE, COL_LEAD_STATUS, COL_LEAD_REASONING, COL_LEAD_SUMMARY, COL_CALL_ID, COL_RECORDING, COL_NOW,
	COL_M_HAS_CONFLICT, COL_M_CONFLICT_DETAIL, COL_LEAD_EMAIL, COL_O_OUTCOME, COL_O_REASON, COL_O_DETAIL,
	COL_O_START, COL_O_END, COL_O_BUSY, COL_M_RESPONSE, COL_M_RESPONSES, COL_M_CHANGE_SOURCE,
	COL_FOUND_MARK,
	/* job_claim_sql's own columns after the load's */
	COL_CLAIM_STATUS, COL_CLAIM_ATTEMPTS, COL_CLAIM_WAIT_MS, COL_USER_FOUND,
};

/* `sent` and the meeting's flag in one statement, so a mail is never recorded half. */
static const char job_sent_sql[] =
	"WITH d AS (UPDATE mail_deliveries SET status = 'sent', sent_at = now(), last_error = NULL"
	"  WHERE message_id = $1 RETURNING 1),"
	" inv AS (UPDATE calendar_meetings SET invite_email_sent = TRUE, invite_email_sent_at = now()"
	"  WHERE id = $2::uuid AND $3::text IN ('created', 'rescheduled') RETURNING 1),"
	" rem AS (UPDATE calendar_meetings SET reminder_email_sent = TRUE, reminder_email_sent_at = now()"
	"  WHERE id = $2::uuid AND $3::text = 'reminder' RETURNING 1)"
	" SELECT (SELECT count(*) FROM d)";

static const char job_failed_sql[] =
	"UPDATE mail_deliveries SET status = 'failed', last_error = $2 WHERE message_id = $1 AND status <> 'sent'";

struct mail_job {
	struct mailer *m;
	struct mq_delivery *d;
	const char *job_id;		/* the delivery's message_id: the de-duplication key */
	const char *trace;		/* x-trace-id: what caused the mail (the lead's message), for logs */
	const char *kind_name;		/* "unknown" until parsed: a metrics label */
	enum content_kind kind;
	char *user_id;
	char *meeting_id;		/* NULL for disconnected and conflict */
	char *previous_id;
	char *lead_id;
	int sequence;			/* -1: not in the job, use the meeting's */
	char *reason;
	char *owner;			/* the checked owner address */
	char *fail_reason;		/* what the next step reports: a dead letter's reason, */
	char *fail_detail;		/* its detail, or a retry's cause */
	int record_tries;
	struct event *pause;
};

static void job_free(struct mail_job *job)
{
	struct mailer *m = job->m;

	mq_delivery_free(job->d);
	free(job->user_id);
	free(job->meeting_id);
	free(job->previous_id);
	free(job->lead_id);
	free(job->reason);
	free(job->owner);
	free(job->fail_reason);
	free(job->fail_detail);
	if (job->pause != NULL)
		event_free(job->pause);
	free(job);
	m->in_flight--;
}

static void job_count(struct mail_job *job, const char *result)
{
	metric_inc(metrics_counter("mailer_mails_total", "Mail jobs handled, by kind and result.", "kind",
				   job->kind_name, "result", result, NULL));
}

static void job_ack(struct mail_job *job)
{
	mq_ack(job->m->env.consumer, job->d->token);
	job_free(job);
}

static void job_on_settled(bool settled, void *arg)
{
	(void)settled;
	job_free(arg);
}

static void job_dead_letter(struct mail_job *job, const char *reason, const char *detail)
{
	struct mailer *m = job->m;

	job_count(job, "failed");
	retry_dead_letter(&m->env.retry, job->d, reason, detail, job_on_settled, job);
}

static void job_on_failed_recorded(const struct db_result *r, void *arg)
{
	struct mail_job *job = arg;

	if (mailer_closing(job->m)) {
		job_free(job);
		return;
	}
	/* The dead letter carries the same reason, so a lost record loses nothing. */
	if (r->status != DB_OK)
		log_warn("could not record a failed mail", LOG_STR("trace", job->trace),
			 LOG_STR("job", job->job_id), LOG_STR("error", r->error));
	job_dead_letter(job, job->fail_reason, job->fail_detail);
}

/* Keep what the next step reports (a dead letter's reason and detail, a retry's cause). */
static void job_set_failure(struct mail_job *job, const char *reason, const char *detail)
{
	free(job->fail_reason);
	free(job->fail_detail);
	job->fail_reason = reason ? xstrdup(reason) : NULL;
	job->fail_detail = detail ? xstrdup(detail) : NULL;
}

/*
 * "what: detail" for mail_deliveries.last_error: a server's reply may hold
 * any bytes, and the column takes only valid UTF-8. The caller frees it.
 */
static char *job_error_text(const char *what, const char *detail)
{
	char *raw = xasprintf("%s: %s", what, detail ? detail : "no detail");
	char *text = text_clean(raw, false);

	free(raw);
	text_cut_utf8(text, JOB_ERROR_MAX);
	return text;
}

/* A job that can never be mailed: record `failed`, then dead-letter it with the reason (retry.c logs it). */
static void job_fail(struct mail_job *job, const char *reason, const char *detail)
{
	char *text = job_error_text(reason, detail);
	const char *params[] = { job->job_id, text };

	job_set_failure(job, reason, detail);
	db_query(job->m->env.db, job_failed_sql, 2, params, job_on_failed_recorded, job);
	free(text);
}

/* Through the next retry tier, or an earlier one past lease_left_ms (see retry_later_within()). */
static void job_retry_within(struct mail_job *job, const char *why, long lease_left_ms)
{
	struct mailer *m = job->m;

	log_info("mail will be retried", LOG_STR("trace", job->trace),
		 LOG_STR("job", job->job_id), LOG_STR("kind", job->kind_name),
		 LOG_STR("why", why), LOG_INT("attempt", retry_attempt(job->d) + 1));
	job_count(job, "retried");
	retry_later_within(&m->env.retry, job->d, lease_left_ms, job_on_settled, job);
}

static void job_retry_now(struct mail_job *job, const char *why)
{
	job_retry_within(job, why, 0);
}

static void job_on_retry_recorded(const struct db_result *r, void *arg)
{
	struct mail_job *job = arg;

	if (mailer_closing(job->m)) {
		job_free(job);
		return;
	}
	if (r->status != DB_OK)
		log_warn("could not record a mail attempt", LOG_STR("trace", job->trace),
			 LOG_STR("job", job->job_id), LOG_STR("error", r->error));
	job_retry_now(job, job->fail_detail);
}

/*
 * Something that may pass (a 4xx, no connection, the database down): through
 * the next retry tier, or to the dead letters once they are used up. With
 * record, this attempt's claim is released as `failed` with why, so the
 * retried copy can claim it at once.
 */
static void job_transient(struct mail_job *job, const char *why, bool record)
{
	if (retry_exhausted(&job->m->env.retry, job->d)) {
		char *detail = xasprintf("gave up after %d attempts; last error: %s", retry_attempt(job->d) + 1, why);

		job_fail(job, "retries_exhausted", detail);
		free(detail);
		return;
	}
	if (!record) {
		job_retry_now(job, why);
		return;
	}
	{
		char *attempt = xasprintf("attempt %d", retry_attempt(job->d) + 1);
		char *text = job_error_text(attempt, why);
		const char *params[] = { job->job_id, text };

		free(attempt);
		job_set_failure(job, NULL, why);
		db_query(job->m->env.db, job_failed_sql, 2, params, job_on_retry_recorded, job);
		free(text);
	}
}

static void job_record_sent(struct mail_job *job);

static void job_on_record_pause(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	job_record_sent(arg);
}

static void job_on_sent_recorded(const struct db_result *r, void *arg)
{
	struct mail_job *job = arg;

	if (mailer_closing(job->m)) {
		job_free(job);
		return;
	}
	if (r->status == DB_UNAVAILABLE && ++job->record_tries < JOB_RECORD_TRIES) {
		long ms = (long)JOB_RECORD_PAUSE_MS << (job->record_tries - 1);
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

		/* The mail is out: a redelivery now would send it again, so keep trying here first. */
		if (job->pause == NULL)
			job->pause = xevent_new(job->m->env.base, -1, 0, job_on_record_pause, job);
		evtimer_add(job->pause, &tv);
		return;
	}
	if (r->status == DB_UNAVAILABLE) {
		log_error("mail sent but not recorded; its job goes back to the queue and may be sent again",
			  LOG_STR("trace", job->trace), LOG_STR("job", job->job_id), LOG_STR("error", r->error));
		mq_nack(job->m->env.consumer, job->d->token, true);
		job_free(job);
		return;
	}
	if (r->status != DB_OK)
		log_error("mail sent but the record was refused", LOG_STR("trace", job->trace),
			  LOG_STR("job", job->job_id),
			  LOG_STR("error", r->error));
	job_ack(job);
}

static void job_record_sent(struct mail_job *job)
{
	const char *params[] = { job->job_id, job->meeting_id, job->kind_name };

	db_query(job->m->env.db, job_sent_sql, 3, params, job_on_sent_recorded, job);
}

static void job_on_smtp(const struct smtp_result *r, void *arg)
{
	struct mail_job *job = arg;

	if (mailer_closing(job->m)) {
		job_free(job);
		return;
	}
	metric_observe(metrics_histogram("mailer_send_duration_seconds", "Time to hand one mail to the SMTP server.",
					 metrics_latency_buckets, metrics_latency_nbuckets, "kind", job->kind_name,
					 NULL),
		       r->seconds);
	switch (r->outcome) {
	case SMTP_SENT:
		log_info("mail sent", LOG_STR("trace", job->trace),
			 LOG_STR("job", job->job_id), LOG_STR("kind", job->kind_name),
			 LOG_STR("meeting", job->meeting_id), LOG_EMAIL("to", job->owner),
			 LOG_INT("ms", (long long)(r->seconds * 1000)));
		job_count(job, "sent");
		job_record_sent(job);
		return;
	case SMTP_TRANSIENT:
		job_transient(job, r->detail, true);
		return;
	case SMTP_PERMANENT:
		job_fail(job, "smtp_rejected", r->detail);
		return;
	}
}

static const char *job_col(const struct db_result *r, int col)
{
	const char *v = db_value(r, 0, col);

	return v != NULL && *v != '\0' ? v : NULL;
}

static int64_t job_col_int(const struct db_result *r, int col)
{
	const char *v = db_value(r, 0, col);

	return v != NULL ? strtoll(v, NULL, 10) : 0;
}

static void job_meeting_facts(const struct db_result *r, struct content_meeting *cm)
{
	const char *has_conflict = job_col(r, COL_M_HAS_CONFLICT);	/* "t", "f" or NULL */
	const char *source = job_col(r, COL_M_CHANGE_SOURCE);

	cm->id = job_col(r, COL_M_ID);
	cm->google_event_id = job_col(r, COL_M_EVENT);
	cm->title = job_col(r, COL_M_TITLE);
	cm->description = job_col(r, COL_M_DESCRIPTION);
	cm->attendee_email = job_col(r, COL_M_ATTENDEE_EMAIL);
	cm->attendee_name = job_col(r, COL_M_ATTENDEE_NAME);
	cm->zone = job_col(r, COL_M_ZONE);
	cm->meet_link = job_col(r, COL_M_MEET);
	cm->html_link = job_col(r, COL_M_HTML);
	cm->cancellation_reason = job_col(r, COL_M_CANCEL_REASON);
	cm->check = has_conflict == NULL ? CONTENT_CHECK_NONE
		    : strcmp(has_conflict, "t") == 0 ? CONTENT_CHECK_BUSY : CONTENT_CHECK_FREE;
	cm->conflict_detail = job_col(r, COL_M_CONFLICT_DETAIL);
	cm->changed_in_google = source != NULL && strcmp(source, "google") == 0;
	cm->start_s = job_col_int(r, COL_M_START);
	cm->end_s = job_col_int(r, COL_M_END);
}

/*
 * Everything the mail says, from the loaded row and the transcript link made
 * from it. Pointers into r and transcript_url: use before either goes.
 */
static void job_facts(const struct mail_job *job, const struct db_result *r, const char *transcript_url,
		      struct content_facts *f)
{
	const struct config *cfg = job->m->env.cfg;

	memset(f, 0, sizeof(*f));
	f->kind = job->kind;
	f->sequence = job->sequence >= 0 ? job->sequence : (int)job_col_int(r, COL_M_SEQUENCE);
	f->now_s = job_col_int(r, COL_NOW);
	f->owner_name = job_col(r, COL_OWNER_NAME);
	f->owner_email = job->owner;
	f->google_email = job_col(r, COL_GOOGLE_EMAIL);
	job_meeting_facts(r, &f->meeting);
	if (job_col(r, COL_P_ID) != NULL) {
		f->has_previous = true;
		f->previous.zone = job_col(r, COL_P_ZONE);
		f->previous.start_s = job_col_int(r, COL_P_START);
		f->previous.end_s = job_col_int(r, COL_P_END);
	}
	f->lead_id = job_col(r, COL_LEAD_ID);
	f->lead_email = job_col(r, COL_LEAD_EMAIL);
	f->lead.name = job_col(r, COL_LEAD_NAME);
	f->lead.company = job_col(r, COL_LEAD_COMPANY);
	f->lead.phone = job_col(r, COL_LEAD_PHONE);
	f->lead.status_tag = job_col(r, COL_LEAD_STATUS);
	f->lead.reasoning_json = job_col(r, COL_LEAD_REASONING);
	f->lead.summary = job_col(r, COL_LEAD_SUMMARY);
	f->lead.recording_url = job_col(r, COL_RECORDING);
	f->lead.transcript_url = transcript_url;
	f->disconnect_reason = job->reason ? job->reason : job_col(r, COL_DISCONNECT_REASON);
	f->disconnected_at = job_col_int(r, COL_DISCONNECTED_AT);
	f->user_zone = job_col(r, COL_USER_ZONE);
	f->reconnect_url = cfg->frontend_url;
	f->requested_start_s = job_col_int(r, COL_O_START);
	f->requested_end_s = job_col_int(r, COL_O_END);
	f->busy_json = job_col(r, COL_O_BUSY);
	f->busy_detail = job_col(r, COL_O_DETAIL);
}

static void job_send(struct mail_job *job, const struct db_result *r)
{
	struct mailer *m = job->m;
	struct content_facts facts;
	struct content c;
	char *error = NULL, *to, *message_id;
	char *transcript = cfg_transcript_url(m->env.cfg->transcript_url, job_col(r, COL_CALL_ID));
	struct compose_mail mail;
	int rc;

	job_facts(job, r, transcript, &facts);
	rc = content_build(&facts, &c, &error);
	free(transcript);
	if (rc < 0) {
		log_error("a mail template is broken", LOG_STR("kind", job->kind_name), LOG_STR("error", error));
		job_fail(job, "template_error", error);
		free(error);
		return;
	}
	to = header_mailbox(facts.owner_name, job->owner);
	message_id = header_message_id(job->job_id, m->from_domain);
	mail = (struct compose_mail){
		.from = m->from_header,
		.to = to,
		.subject = c.subject,
		.message_id = message_id,
		.date = (time_t)facts.now_s,
		.action = job->kind_name,
		.meeting_id = facts.meeting.id,
		.lead_id = facts.lead_id,
		.conflict = c.conflict,
		.text = c.text,
		.html = c.html,
		.ics = c.ics,
		.ics_method = c.ics_method,
	};
	/* Everything in mail is copied onto the curl handle. */
	rc = smtp_send(m->http, m->env.cfg, m->from_address, job->owner, &mail, job_on_smtp, job);
	content_release(&c);
	free(to);
	free(message_id);
	if (rc < 0)
		job_transient(job, "the SMTP transfer could not start", true);
}

static void job_on_skip_recorded(const struct db_result *r, void *arg)
{
	struct mail_job *job = arg;

	if (mailer_closing(job->m)) {
		job_free(job);
		return;
	}
	if (r->status == DB_UNAVAILABLE) {
		job_transient(job, "database unavailable", false);
		return;
	}
	if (r->status != DB_OK)
		log_warn("could not record a skipped mail", LOG_STR("trace", job->trace),
			 LOG_STR("job", job->job_id),
			 LOG_STR("error", r->error));
	job_ack(job);
}

/* A mail not to send: recorded `failed` with why (so a later copy may still mail), then acked. */
static void job_skip(struct mail_job *job, const char *why)
{
	const char *params[] = { job->job_id, why };

	job_count(job, "skipped");
	db_query(job->m->env.db, job_failed_sql, 2, params, job_on_skip_recorded, job);
}

/* Is the lead still skipped for a conflict, with the slot it asked for? */
static bool job_still_conflict(const struct db_result *r)
{
	const char *outcome = job_col(r, COL_O_OUTCOME), *reason = job_col(r, COL_O_REASON);

	return outcome != NULL && strcmp(outcome, "skipped") == 0 && reason != NULL &&
	       strcmp(reason, "conflict") == 0 && job_col(r, COL_O_START) != NULL && job_col(r, COL_O_END) != NULL;
}

/*
 * Is the decline this job reports still the lead's latest answer (the job's
 * sequence counts the answers), on a meeting that still takes place? A
 * later decline has a job of its own.
 */
static bool job_still_declined(const struct mail_job *job, const struct db_result *r)
{
	const char *response = job_col(r, COL_M_RESPONSE), *status = job_col(r, COL_M_STATUS);

	return response != NULL && strcmp(response, "declined") == 0 && status != NULL &&
	       strcmp(status, "scheduled") == 0 &&
	       (job->sequence < 0 || job_col_int(r, COL_M_RESPONSES) == job->sequence);
}

/* The claim is ours and r holds the load (the columns COL_EMAIL to COL_M_CHANGE_SOURCE). */
static void job_loaded(struct mail_job *job, const struct db_result *r)
{
	const char *status;

	if (strcmp(db_value(r, 0, COL_USER_FOUND), "t") != 0) {
		job_fail(job, "unknown_user", "no user with this id exists");
		return;
	}
	if (job->kind == CONTENT_CONFLICT && job_col(r, COL_LEAD_ID) == NULL) {
		job_fail(job, "unknown_lead", "no lead with this id belongs to this user");
		return;
	}
	if (job->kind != CONTENT_DISCONNECTED && job->kind != CONTENT_CONFLICT && job_col(r, COL_M_ID) == NULL) {
		job_fail(job, "unknown_meeting", "no meeting with this id belongs to this user");
		return;
	}
	job->owner = header_address(db_value(r, 0, COL_EMAIL));
	if (job->owner == NULL) {
		job_fail(job, "invalid_recipient", "the owner's email is not one plain address");
		return;
	}
	status = job_col(r, COL_M_STATUS);
	if (job->kind == CONTENT_REMINDER && status != NULL && strcmp(status, "scheduled") != 0) {
		char *why = xasprintf("not sent: the meeting is %s", status);

		/* A reminder of a meeting that no longer takes place would mislead; nothing is wrong. */
		log_info("reminder skipped", LOG_STR("trace", job->trace),
			 LOG_STR("job", job->job_id), LOG_STR("status", status));
		job_skip(job, why);
		free(why);
		return;
	}
	if (job->kind == CONTENT_CONFLICT && !job_still_conflict(r)) {
		const char *outcome = job_col(r, COL_O_OUTCOME), *reason = job_col(r, COL_O_REASON);
		char *why = xasprintf("not sent: the lead's outcome is %s%s%s", outcome ? outcome : "not recorded",
				      reason ? "/" : "", reason ? reason : "");

		/* Someone booked the lead (or it failed for another reason) since: "not booked" would be false. */
		log_info("conflict mail dropped: the lead is no longer skipped for a conflict",
			 LOG_STR("trace", job->trace), LOG_STR("job", job->job_id), LOG_STR("lead", job->lead_id),
			 LOG_STR("outcome", outcome), LOG_STR("reason", reason));
		job_skip(job, why);
		free(why);
		return;
	}
	if (job->kind == CONTENT_DECLINED && !job_still_declined(job, r)) {
		const char *response = job_col(r, COL_M_RESPONSE);
		char *why = xasprintf("not sent: the meeting is %s and the lead's answer %lld is %s; this job reports "
				      "answer %d", status, (long long)job_col_int(r, COL_M_RESPONSES),
				      response ? response : "not known", job->sequence);

		/* The lead answered again, or the meeting moved or ended: "declined, you decide" would be stale. */
		log_info("declined mail dropped: the decline is no longer the lead's latest answer",
			 LOG_STR("trace", job->trace), LOG_STR("job", job->job_id), LOG_STR("meeting", job->meeting_id),
			 LOG_STR("status", status), LOG_STR("response", response));
		job_skip(job, why);
		free(why);
		return;
	}
	job_send(job, r);
}

static void job_on_claimed(const struct db_result *r, void *arg)
{
	struct mail_job *job = arg;
	struct mailer *m = job->m;
	const char *status;

	if (mailer_closing(m)) {
		job_free(job);
		return;
	}
	if (r->status != DB_OK) {
		job_transient(job, r->status == DB_UNAVAILABLE ? "database unavailable" : r->error, false);
		return;
	}
	status = db_ntuples(r) > 0 ? db_value(r, 0, COL_CLAIM_STATUS) : "sending";
	if (strcmp(status, "sent") == 0) {
		log_info("mail already sent; dropping the duplicate", LOG_STR("trace", job->trace),
			 LOG_STR("job", job->job_id),
			 LOG_STR("kind", job->kind_name));
		job_count(job, "duplicate");
		job_ack(job);
		return;
	}
	if (strcmp(status, "claimed") != 0) {
		/*
		 * Another copy holds the lease (it is sending, or it crashed): look again
		 * after a tier, and no later than needed once the lease has run out.
		 */
		const char *left = db_ntuples(r) > 0 ? db_value(r, 0, COL_CLAIM_WAIT_MS) : NULL;

		job_retry_within(job, "another copy of this job is being sent", left ? atol(left) : 0);
		return;
	}
	job_loaded(job, r);
}

/* The job names what to mail; anything unreadable goes to mailer.dead at once. The job owns the fields. */
static int job_parse(struct mail_job *job, const char **why)
{
	struct jobspec spec;
	int rc = jobspec_parse(job->d->msg.message_id, job->d->msg.body, job->d->msg.body_len, &spec, why);

	if (spec.has_kind)
		job->kind_name = content_kind_name(spec.kind);
	if (rc < 0)
		return -1;
	job->kind = spec.kind;
	job->user_id = spec.user_id;
	job->meeting_id = spec.meeting_id;
	job->previous_id = spec.previous_id;
	job->lead_id = spec.lead_id;
	job->sequence = spec.sequence;
	job->reason = spec.reason;
	return 0;
}

void job_handle(struct mailer *m, struct mq_delivery *d)
{
	struct mail_job *job = xcalloc(1, sizeof(*job));
	const char *why = NULL;
	char lease[16];

	job->m = m;
	job->d = d;
	job->job_id = d->msg.message_id;
	job->trace = mq_delivery_header(d, "x-trace-id") ? mq_delivery_header(d, "x-trace-id") : d->msg.message_id;
	job->kind_name = "unknown";
	if (job_parse(job, &why) < 0) {
		job_dead_letter(job, "malformed", why);
		return;
	}
	snprintf(lease, sizeof(lease), "%d", (int)JOB_LEASE_S);
	{
		const char *params[] = { job->user_id, job->meeting_id, job->previous_id, job->lead_id,
					 m->env.cfg->default_timezone, job->job_id, job->kind_name, lease };

		db_query(m->env.db, job_claim_sql, 8, params, job_on_claimed, job);
	}
}
