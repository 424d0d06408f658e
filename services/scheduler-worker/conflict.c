/*
 * conflict: a meeting's slot against the rep's busy time (see conflict.h).
 */
#include "conflict.h"

#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "google.h"
#include "log.h"
#include "metrics.h"
#include "scheduler.h"
#include "xmalloc.h"

struct conflict_job {
	struct scheduler *s;
	char *user_id, *access_token, *calendar_id;
	int64_t start_s, end_s, own_start_s, own_end_s;
	const char *purpose;
	conflict_cb cb;
	void *arg;
};

static const char *const conflict_names[] = { "free", "busy", "unchecked", "transient", "unauthorized" };

const char *conflict_status_name(enum conflict_status status)
{
	return conflict_names[status];
}

static void conflict_end(struct conflict_job *job, const struct conflict_result *r)
{
	metric_inc(metrics_counter("scheduler_conflict_checks_total",
				   "The rep's calendar asked for busy time, by purpose (a booking's slot, an availability"
				   " read) and answer.",
				   "purpose", job->purpose, "result", conflict_status_name(r->status), NULL));
	job->cb(r, job->arg);
	free(job->user_id);
	xfree_secret(job->access_token);
	free(job->calendar_id);
	free(job);
}

static void conflict_unchecked(struct conflict_job *job, const char *reason, const char *detail)
{
	struct conflict_result r = { .status = CONFLICT_UNCHECKED, .reason = reason, .detail = detail };

	log_warn("could not read the rep's busy time from Google",
		 LOG_STR("user", job->user_id), LOG_STR("reason", reason), LOG_STR("detail", detail));
	conflict_end(job, &r);
}

static void conflict_on_freebusy(const struct google_result *g, void *arg)
{
	struct conflict_job *job = arg;
	struct busy_list busy = { 0 };
	struct conflict_result r = { 0 };
	const char *error = NULL;

	if (g->outcome == GOOGLE_UNAUTHORIZED || g->outcome == GOOGLE_TRANSIENT) {
		r.status = g->outcome == GOOGLE_UNAUTHORIZED ? CONFLICT_UNAUTHORIZED : CONFLICT_TRANSIENT;
		r.reason = g->reason ? g->reason : google_outcome_name(g->outcome);
		r.detail = g->message;
		conflict_end(job, &r);
		return;
	}
	if (g->outcome != GOOGLE_OK) {
		/* 403 insufficientPermissions: a grant from before the calendar.freebusy scope was asked for. */
		conflict_unchecked(job, g->reason ? g->reason : google_outcome_name(g->outcome),
				   g->reason != NULL && strcmp(g->reason, "insufficientPermissions") == 0
					   ? "the Google grant does not allow reading free/busy time; reconnect Google"
					     " Calendar to have conflicts checked"
					   : "Google refused the free/busy query");
		return;
	}
	if (busy_from_freebusy(g->json, job->calendar_id, job->start_s, job->end_s, &busy, &error) < 0) {
		conflict_unchecked(job, "unreadable", "Google's free/busy answer could not be read");
		return;
	}
	if (error != NULL) {
		char *detail = xasprintf("Google could not report the calendar's busy time (%s)", error);

		conflict_unchecked(job, error, detail);
		free(detail);
		return;
	}
	/* freeBusy cannot tell events apart: the meeting's own slot, when it moves, is not a conflict. */
	if (job->own_end_s > job->own_start_s)
		busy_subtract(&busy, job->own_start_s, job->own_end_s);
	r.status = busy.n > 0 ? CONFLICT_BUSY : CONFLICT_FREE;
	r.busy = &busy;
	conflict_end(job, &r);
	busy_clear(&busy);
}

static void conflict_query(void *arg)
{
	struct conflict_job *job = arg;

	google_freebusy(job->s->google, job->access_token, job->calendar_id, job->start_s, job->end_s,
			conflict_on_freebusy, job);
}

void conflict_check(struct scheduler *s, const struct conflict_slot *slot, conflict_cb cb, void *arg)
{
	struct conflict_job *job = xcalloc(1, sizeof(*job));

	job->s = s;
	job->user_id = xstrdup(slot->user_id);
	job->access_token = xstrdup(slot->access_token);
	job->calendar_id = xstrdup(slot->calendar_id);
	job->start_s = slot->start_s;
	job->end_s = slot->end_s;
	job->own_start_s = slot->own_start_s;
	job->own_end_s = slot->own_end_s;
	job->purpose = slot->purpose != NULL ? slot->purpose : "booking";
	job->cb = cb;
	job->arg = arg;
	booking_rate_limited(s, slot->user_id, conflict_query, job);
}
