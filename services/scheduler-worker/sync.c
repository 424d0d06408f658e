/*
 * sync: the platform follows what the rep and the lead do in Google Calendar
 * (docs/sync.md): incremental syncs of each connected user's calendar,
 * asked for by Google's pushes and by a sweep, one at a time per user
 * however many schedulers run.
 *
 * A request (calendar.changed from the gateway's webhook, calendar.connected,
 * gcalctl) is only recorded, users.google_sync_requested_at = now(), before
 * the message is acked; then this process starts the user's run unless it
 * runs already (and, for calendar.connected, the channels' pass, so the new
 * user's channel opens at once: channels.c). A run claims the user in the database
 * (google_sync_claimed_until, two minutes, extended page by page); a
 * scheduler that cannot claim leaves the user to the one that holds it,
 * which runs again if a request arrived after its own start, so any number
 * of pushes during a run cause one more. The claim's value is the run's
 * fence: the statements that store the token or release the claim apply only
 * while it is unchanged, so a run that outlived its claim stores nothing.
 *
 * A run republishes mails its user's changes still owe (syncapply.c), gets
 * an access token (tokens.h), then lists the calendar with the stored sync
 * token page by page (events.list, within the user's rate limit), hands
 * every event that is one of the user's meetings to syncapply in Google's
 * order, and asks for the next page only when the page is applied. The new
 * sync token, on the last page, is stored with google_synced_at = the run's
 * start only after every change on every page was applied. Without a token
 * (a first sync, a full request) or when Google answers 410 fullSyncRequired,
 * the run lists everything and then cancels each scheduled meeting whose
 * event the list did not hold at all.
 *
 * What ends a run early stores nothing, so the next run lists the same
 * changes again and finds those already applied: a meeting a platform
 * command holds (syncapply says wait) or a shutdown release the claim at
 * once; Google unavailable (after lib/google's quick retries) or a rate
 * limit releases it with a backoff (Retry-After when Google gave one), so no
 * scheduler claims the user before then; a user no longer connected, or a
 * calendar Google refuses to list, waits a poll period.
 *
 * A sweep every SYNC_SWEEP_PERIOD_S claims users that are connected, not
 * claimed, and either asked for after their last sync or not synced within
 * SYNC_POLL_SECONDS: lost pushes, no GOOGLE_WEBHOOK_URL, a crash in a run
 * (its claim expires) and runs that ended early all end up here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <event2/event.h>

#include "booking.h"
#include "db.h"
#include "google.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "retry.h"
#include "scheduler.h"
#include "sync.h"
#include "tokens.h"
#include "topology.h"
#include "xmalloc.h"

#define SYNC_SWEEP_PERIOD_S 5
/* Runs at once in one process; the sweep claims no more than the room left. */
#define SYNC_MAX_RUNS 16
#define SYNC_CLAIM "interval '120 seconds'"
/* Google or the database unavailable, without a Retry-After: this long before the user is claimed again. */
#define SYNC_BACKOFF_S 30

static const char sync_request_sql[] =
	"UPDATE users SET google_sync_requested_at = now(),"
	" google_sync_token = CASE WHEN $2::boolean THEN NULL ELSE google_sync_token END WHERE id = $1";

static const char sync_claim_sql[] =
	"UPDATE users SET google_sync_claimed_until = now() + " SYNC_CLAIM
	" WHERE id = $1 AND google_calendar_connected"
	" AND (google_sync_claimed_until IS NULL OR google_sync_claimed_until < now())"
	" RETURNING google_sync_token, COALESCE(google_calendar_id, 'primary'), COALESCE(google_calendar_timezone, $2),"
	" now()::text, google_sync_claimed_until::text";

enum { CL_TOKEN, CL_CALENDAR, CL_ZONE, CL_START, CL_CLAIM };

static const char sync_extend_sql[] =
	"UPDATE users SET google_sync_claimed_until = now() + " SYNC_CLAIM
	" WHERE id = $1 AND google_sync_claimed_until = $2::timestamptz RETURNING google_sync_claimed_until::text";

static const char sync_forget_sql[] =
	"UPDATE users SET google_sync_token = NULL WHERE id = $1 AND google_sync_claimed_until = $2::timestamptz";

static const char sync_release_sql[] =
	"UPDATE users SET google_sync_claimed_until = CASE WHEN $3::int > 0 THEN now() + make_interval(secs => $3::int)"
	" END WHERE id = $1 AND google_sync_claimed_until = $2::timestamptz";

/*
 * The token is replaced only if it is still the one the run started from: a
 * full sync asked for meanwhile set it to NULL, and the run again that the
 * request causes (requested after the start) must be a full one.
 */
static const char sync_done_sql[] =
	"UPDATE users SET google_sync_token = CASE WHEN google_sync_token IS NOT DISTINCT FROM $3 THEN $2"
	" ELSE google_sync_token END, google_synced_at = $4::timestamptz, google_sync_claimed_until = NULL"
	" WHERE id = $1 AND google_sync_claimed_until = $5::timestamptz"
	" RETURNING COALESCE(google_sync_requested_at > $4::timestamptz, FALSE)";

/* Which of a page's event ids ($3, a JSON array) are the user's scheduled meetings on this calendar. */
static const char sync_page_sql[] =
	"SELECT DISTINCT google_event_id FROM calendar_meetings WHERE user_id = $1 AND google_calendar_id = $2"
	" AND status = 'scheduled' AND google_event_id IN (SELECT jsonb_array_elements_text($3::jsonb))";

/* A full sync's meetings: those the whole list must hold. */
static const char sync_watch_sql[] =
	"SELECT DISTINCT google_event_id FROM calendar_meetings WHERE user_id = $1 AND google_calendar_id = $2"
	" AND status = 'scheduled'";

static const char sync_sweep_sql[] =
	"SELECT id FROM users WHERE google_calendar_connected"
	" AND (google_sync_claimed_until IS NULL OR google_sync_claimed_until < now())"
	" AND (google_synced_at IS NULL OR google_sync_requested_at > google_synced_at"
	"  OR google_synced_at < now() - make_interval(secs => $1::int))"
	" ORDER BY google_synced_at NULLS FIRST LIMIT $2::int";

struct syncer {
	struct scheduler *s;
	struct event *timer;
	struct sync_run *runs;
	unsigned nruns;
	bool sweeping;		/* the sweep's query is out */
	struct metric *runs_incremental, *runs_full;
};

/* A set of event ids; seen marks those a full list held. */
struct sync_ids {
	char **id;
	bool *seen;
	size_t n;
};

struct sync_run {
	struct syncer *sy;
	struct sync_run *next;
	char *user_id;
	/* As claimed. */
	char *calendar_id, *zone, *start, *claim;
	char *old_token;		/* the stored token the run lists from; NULL: a full sync */
	struct syncapply_target target;
	char *access_token;
	bool refreshed;			/* a 401 was answered with one forced refresh already */
	/* The list. */
	bool full, watched;
	struct sync_ids watch;		/* full: the meetings to find */
	char *page_token, *new_token;
	cJSON *page;
	const cJSON *item;		/* the page's next event to look at */
	struct sync_ids relevant;	/* the page's events that are meetings */
	size_t reconcile;		/* full: the next watch entry to check */
};

static void sync_ids_release(struct sync_ids *ids)
{
	for (size_t i = 0; i < ids->n; i++)
		free(ids->id[i]);
	free(ids->id);
	free(ids->seen);
	memset(ids, 0, sizeof(*ids));
}

/* The first column of every row of r. */
static void sync_ids_from(const struct db_result *r, struct sync_ids *ids)
{
	sync_ids_release(ids);
	ids->n = (size_t)db_ntuples(r);
	ids->id = xcalloc(ids->n + 1, sizeof(*ids->id));
	ids->seen = xcalloc(ids->n + 1, sizeof(*ids->seen));
	for (size_t i = 0; i < ids->n; i++)
		ids->id[i] = xstrdup(db_value(r, (int)i, 0));
}

static bool sync_ids_mark(struct sync_ids *ids, const char *id)
{
	for (size_t i = 0; i < ids->n; i++)
		if (strcmp(ids->id[i], id) == 0) {
			ids->seen[i] = true;
			return true;
		}
	return false;
}

static struct sync_run *sync_find(const struct syncer *sy, const char *user_id)
{
	for (struct sync_run *r = sy->runs; r != NULL; r = r->next)
		if (strcmp(r->user_id, user_id) == 0)
			return r;
	return NULL;
}

static bool sync_stopping(const struct syncer *sy)
{
	return worker_stopping(sy->s->env.worker);
}

/* Forget everything but the user: the run is over, or starts again. */
static void sync_run_reset(struct sync_run *run)
{
	char **strings[] = { &run->calendar_id, &run->zone, &run->start, &run->claim, &run->old_token,
			     &run->page_token, &run->new_token };

	for (size_t i = 0; i < sizeof(strings) / sizeof(*strings); i++) {
		free(*strings[i]);
		*strings[i] = NULL;
	}
	xfree_secret(run->access_token);
	run->access_token = NULL;
	cJSON_Delete(run->page);
	run->page = NULL;
	run->item = NULL;
	sync_ids_release(&run->watch);
	sync_ids_release(&run->relevant);
	run->refreshed = run->full = run->watched = false;
	run->reconcile = 0;
}

static void sync_run_free(struct sync_run *run)
{
	struct syncer *sy = run->sy;

	for (struct sync_run **p = &sy->runs; *p != NULL; p = &(*p)->next)
		if (*p == run) {
			*p = run->next;
			break;
		}
	sy->nruns--;
	sync_run_reset(run);
	free(run->user_id);
	free(run);
}

/* Shutting down: the run ends where it is, storing nothing (lib/worker.h); its claim expires. */
static bool sync_released(struct sync_run *run)
{
	if (!scheduler_closing(run->sy->s))
		return false;
	sync_run_free(run);
	return true;
}

static void sync_claim(struct sync_run *run);
static void sync_request_page(struct sync_run *run);
static void sync_next_item(struct sync_run *run);

static void sync_on_released(const struct db_result *r, void *arg)
{
	struct sync_run *run = arg;

	if (r->status != DB_OK)
		log_warn("could not release a sync claim; it expires by itself", LOG_STR("user", run->user_id),
			 LOG_STR("error", r->error));
	sync_run_free(run);
}

/* End the run without storing anything: the user may be claimed again after backoff_s (0: at once). */
static void sync_end(struct sync_run *run, long backoff_s)
{
	char backoff[24];
	const char *params[] = { run->user_id, run->claim, backoff };

	if (sync_released(run))
		return;
	snprintf(backoff, sizeof(backoff), "%ld", backoff_s);
	db_query(run->sy->s->env.db, sync_release_sql, 3, params, sync_on_released, run);
}

static void sync_on_done(const struct db_result *r, void *arg)
{
	struct sync_run *run = arg;
	bool again;

	if (sync_released(run))
		return;
	if (r->status != DB_OK || db_ntuples(r) == 0) {
		/* Everything is applied; the next run lists the same changes again and finds them so. */
		log_warn("could not store a sync's result; the user is synced again later",
			 LOG_STR("user", run->user_id),
			 LOG_STR("error", r->status != DB_OK ? r->error : "the claim was lost"));
		sync_run_free(run);
		return;
	}
	again = strcmp(db_value(r, 0, 0), "t") == 0;
	log_debug("sync done", LOG_STR("user", run->user_id), LOG_BOOL("full", run->full), LOG_BOOL("again", again));
	if (!again || sync_stopping(run->sy)) {
		sync_run_free(run);
		return;
	}
	/* Asked for again while it ran: one more run covers every request so far. */
	sync_run_reset(run);
	sync_claim(run);
}

static void sync_finish(struct sync_run *run)
{
	const char *params[] = { run->user_id, run->new_token, run->old_token, run->start, run->claim };

	db_query(run->sy->s->env.db, sync_done_sql, 5, params, sync_on_done, run);
}

static void sync_on_reconciled(enum syncapply_status status, void *arg);

/* A change that could not be applied ends the run: at once when a command holds its meeting, else with a backoff. */
static bool sync_apply_failed(struct sync_run *run, enum syncapply_status status)
{
	if (status == SYNCAPPLY_DONE)
		return false;
	sync_end(run, status == SYNCAPPLY_WAIT ? 0 : SYNC_BACKOFF_S);
	return true;
}

/* Full sync, every page applied: each watched meeting the list did not hold at all was deleted in Google. */
static void sync_reconcile(struct sync_run *run)
{
	struct sync_ids *w = &run->watch;

	while (run->reconcile < w->n && w->seen[run->reconcile])
		run->reconcile++;
	if (run->reconcile == w->n) {
		sync_finish(run);
		return;
	}
	syncapply_missing(run->sy->s, &run->target, w->id[run->reconcile++], sync_on_reconciled, run);
}

static void sync_on_reconciled(enum syncapply_status status, void *arg)
{
	struct sync_run *run = arg;

	if (sync_released(run) || sync_apply_failed(run, status))
		return;
	sync_reconcile(run);
}

static void sync_on_extended(const struct db_result *r, void *arg)
{
	struct sync_run *run = arg;

	if (sync_released(run))
		return;
	if (r->status != DB_OK || db_ntuples(r) == 0) {
		log_warn("a sync lost its claim between pages; it stops", LOG_STR("user", run->user_id),
			 LOG_STR("error", r->status != DB_OK ? r->error : "claimed by another"));
		sync_run_free(run);
		return;
	}
	free(run->claim);
	run->claim = xstrdup(db_value(r, 0, 0));
	sync_request_page(run);
}

/* The page is applied: the next one (with the claim extended), or the end of the list. */
static void sync_page_done(struct sync_run *run)
{
	const char *next_page = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run->page, "nextPageToken"));
	const char *next_sync = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run->page, "nextSyncToken"));

	free(run->page_token);
	run->page_token = next_page ? xstrdup(next_page) : NULL;
	if (next_page == NULL) {
		free(run->new_token);
		run->new_token = next_sync ? xstrdup(next_sync) : NULL;
	}
	cJSON_Delete(run->page);
	run->page = NULL;
	run->item = NULL;
	if (next_page != NULL) {
		const char *params[] = { run->user_id, run->claim };

		if (sync_stopping(run->sy)) {
			sync_end(run, 0);
			return;
		}
		db_query(run->sy->s->env.db, sync_extend_sql, 2, params, sync_on_extended, run);
		return;
	}
	if (run->new_token == NULL) {
		log_warn("Google's last page of a sync has no sync token; the user is synced again later",
			 LOG_STR("user", run->user_id));
		sync_end(run, run->sy->s->env.cfg->sync_poll_s);
		return;
	}
	if (run->full)
		sync_reconcile(run);
	else
		sync_finish(run);
}

static void sync_on_applied(enum syncapply_status status, void *arg)
{
	struct sync_run *run = arg;

	if (sync_released(run) || sync_apply_failed(run, status))
		return;
	run->item = run->item->next;
	sync_next_item(run);
}

/* The page's next event that is a meeting goes to syncapply; the others are not the platform's. */
static void sync_next_item(struct sync_run *run)
{
	for (; run->item != NULL; run->item = run->item->next) {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run->item, "id"));

		if (id != NULL && sync_ids_mark(&run->relevant, id)) {
			syncapply_event(run->sy->s, &run->target, run->item, sync_on_applied, run);
			return;
		}
	}
	sync_page_done(run);
}

/* A read of the user's meetings that failed ends the run with a backoff: true when it did. */
static bool sync_read_failed(struct sync_run *run, const struct db_result *r)
{
	if (r->status == DB_OK)
		return false;
	log_warn("a sync could not read the user's meetings", LOG_STR("user", run->user_id), LOG_STR("error", r->error));
	sync_end(run, SYNC_BACKOFF_S);
	return true;
}

static void sync_on_relevant(const struct db_result *r, void *arg)
{
	struct sync_run *run = arg;

	if (sync_released(run) || sync_read_failed(run, r))
		return;
	sync_ids_from(r, &run->relevant);
	for (size_t i = 0; run->full && i < run->relevant.n; i++)
		sync_ids_mark(&run->watch, run->relevant.id[i]);
	sync_next_item(run);
}

/* A page arrived: find which of its events are meetings (one statement), then apply those in order. */
static void sync_on_list(struct sync_run *run, const cJSON *json)
{
	const cJSON *items, *it;
	cJSON *ids;
	char *text;
	const char *params[3];

	run->page = cJSON_Duplicate(json, true);
	items = cJSON_GetObjectItemCaseSensitive(run->page, "items");
	run->item = cJSON_IsArray(items) ? items->child : NULL;
	if (run->item == NULL) {
		sync_page_done(run);
		return;
	}
	ids = cJSON_CreateArray();
	cJSON_ArrayForEach(it, items) {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "id"));

		if (id != NULL)
			cJSON_AddItemToArray(ids, cJSON_CreateString(id));
	}
	text = cJSON_PrintUnformatted(ids);
	cJSON_Delete(ids);
	params[0] = run->user_id;
	params[1] = run->calendar_id;
	params[2] = text;
	db_query(run->sy->s->env.db, sync_page_sql, 3, params, sync_on_relevant, run);
	cJSON_free(text);
}

static void sync_get_token(struct sync_run *run, bool refresh);

static void sync_on_forgotten(const struct db_result *r, void *arg)
{
	struct sync_run *run = arg;

	if (sync_released(run))
		return;
	if (r->status != DB_OK || atoi(PQcmdTuples(r->res)) == 0) {
		log_warn("could not forget a dead sync token", LOG_STR("user", run->user_id),
			 LOG_STR("error", r->status != DB_OK ? r->error : "the claim was lost"));
		sync_run_free(run);
		return;
	}
	free(run->old_token);
	free(run->page_token);
	run->old_token = run->page_token = NULL;
	run->full = true;
	sync_request_page(run);
}

static void sync_on_page(const struct google_result *r, void *arg)
{
	struct sync_run *run = arg;

	if (sync_released(run))
		return;
	switch (r->outcome) {
	case GOOGLE_OK:
		sync_on_list(run, r->json);
		return;
	case GOOGLE_UNAUTHORIZED:
		if (!run->refreshed) {
			run->refreshed = true;
			sync_get_token(run, true);
			return;
		}
		break;
	case GOOGLE_FULL_SYNC:
		if (!run->full) {
			const char *params[] = { run->user_id, run->claim };

			/* Forgotten first: a run that dies now still starts the next one as a full sync. */
			log_info("Google asks for a full sync", LOG_STR("user", run->user_id));
			db_query(run->sy->s->env.db, sync_forget_sql, 2, params, sync_on_forgotten, run);
			return;
		}
		break;
	case GOOGLE_TRANSIENT:
		log_info("Google Calendar is unavailable for a sync; it is tried again later",
			 LOG_STR("user", run->user_id), LOG_INT("status", r->status), LOG_STR("reason", r->reason),
			 LOG_INT("retry_after_s", r->retry_after_s));
		sync_end(run, r->retry_after_s > 0 ? r->retry_after_s : SYNC_BACKOFF_S);
		return;
	default:
		break;
	}
	log_warn("Google refused to list a calendar for a sync; it is tried again after a poll period",
		 LOG_STR("user", run->user_id), LOG_STR("calendar", run->calendar_id), LOG_INT("status", r->status),
		 LOG_STR("outcome", google_outcome_name(r->outcome)), LOG_STR("reason", r->reason),
		 LOG_STR("detail", r->message));
	sync_end(run, run->sy->s->env.cfg->sync_poll_s);
}

static void sync_call_google(void *arg)
{
	struct sync_run *run = arg;

	if (sync_released(run))
		return;
	if (run->page_token == NULL)
		metric_inc(run->full ? run->sy->runs_full : run->sy->runs_incremental);
	google_events_list_sync(run->sy->s->google, run->access_token, run->calendar_id,
				run->full ? NULL : run->old_token, run->page_token, sync_on_page, run);
}

static void sync_on_watch(const struct db_result *r, void *arg)
{
	struct sync_run *run = arg;

	if (sync_released(run) || sync_read_failed(run, r))
		return;
	sync_ids_from(r, &run->watch);
	run->watched = true;
	sync_request_page(run);
}

/* The current page (the first: page_token NULL), after a full sync's meetings are known. */
static void sync_request_page(struct sync_run *run)
{
	if (run->full && !run->watched) {
		const char *params[] = { run->user_id, run->calendar_id };

		db_query(run->sy->s->env.db, sync_watch_sql, 2, params, sync_on_watch, run);
		return;
	}
	booking_rate_limited(run->sy->s, run->user_id, sync_call_google, run);
}

static void sync_on_token(enum tokens_status status, const char *token, void *arg)
{
	struct sync_run *run = arg;

	if (sync_released(run))
		return;
	switch (status) {
	case TOKENS_OK:
		xfree_secret(run->access_token);
		run->access_token = xstrdup(token);
		sync_request_page(run);
		return;
	case TOKENS_NOT_CONNECTED:
	case TOKENS_REVOKED:
		log_info("the user's calendar is not connected; no sync", LOG_STR("user", run->user_id));
		sync_end(run, run->sy->s->env.cfg->sync_poll_s);
		return;
	case TOKENS_TRANSIENT:
		sync_end(run, SYNC_BACKOFF_S);
		return;
	}
}

static void sync_get_token(struct sync_run *run, bool refresh)
{
	tokens_get(run->sy->s->tokens, run->user_id, refresh, sync_on_token, run);
}

static void sync_on_republished(enum syncapply_status status, void *arg)
{
	struct sync_run *run = arg;

	if (sync_released(run))
		return;
	if (status != SYNCAPPLY_DONE) {
		sync_end(run, SYNC_BACKOFF_S);
		return;
	}
	sync_get_token(run, false);
}

static void sync_on_claimed(const struct db_result *r, void *arg)
{
	struct sync_run *run = arg;

	if (sync_released(run))
		return;
	if (r->status != DB_OK || db_ntuples(r) == 0) {
		/* Not connected, or another run holds it and will see the request; a failed claim is the sweep's. */
		if (r->status != DB_OK)
			log_warn("could not claim a user's sync", LOG_STR("user", run->user_id),
				 LOG_STR("error", r->error));
		sync_run_free(run);
		return;
	}
	run->old_token = db_value(r, 0, CL_TOKEN) ? xstrdup(db_value(r, 0, CL_TOKEN)) : NULL;
	run->calendar_id = xstrdup(db_value(r, 0, CL_CALENDAR));
	run->zone = xstrdup(db_value(r, 0, CL_ZONE));
	run->start = xstrdup(db_value(r, 0, CL_START));
	run->claim = xstrdup(db_value(r, 0, CL_CLAIM));
	run->full = run->old_token == NULL;
	run->target = (struct syncapply_target){ .user_id = run->user_id, .calendar_id = run->calendar_id,
						 .zone = run->zone, .run_start = run->start };
	log_debug("sync started", LOG_STR("user", run->user_id), LOG_BOOL("full", run->full));
	syncapply_republish(run->sy->s, &run->target, sync_on_republished, run);
}

static void sync_claim(struct sync_run *run)
{
	const char *params[] = { run->user_id, run->sy->s->env.cfg->default_timezone };

	db_query(run->sy->s->env.db, sync_claim_sql, 2, params, sync_on_claimed, run);
}

/* Start user_id's run here unless one runs here already (it runs again by itself) or there is no room. */
static void sync_start_run(struct syncer *sy, const char *user_id)
{
	struct sync_run *run;

	if (sync_find(sy, user_id) != NULL || sy->nruns >= SYNC_MAX_RUNS || sync_stopping(sy))
		return;
	run = xcalloc(1, sizeof(*run));
	run->sy = sy;
	run->user_id = xstrdup(user_id);
	run->next = sy->runs;
	sy->runs = run;
	sy->nruns++;
	sync_claim(run);
}

static void sync_on_sweep(const struct db_result *r, void *arg)
{
	struct syncer *sy = arg;

	sy->sweeping = false;
	if (r->status != DB_OK || scheduler_closing(sy->s))
		return;
	for (int i = 0; i < db_ntuples(r); i++)
		sync_start_run(sy, db_value(r, i, 0));
}

static void sync_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct syncer *sy = arg;
	char poll[24], room[24];
	const char *params[] = { poll, room };

	(void)fd;
	(void)what;
	event_add(sy->timer, &(struct timeval){ SYNC_SWEEP_PERIOD_S, 0 });
	if (sy->sweeping || sy->nruns >= SYNC_MAX_RUNS || sync_stopping(sy) || !mq_ready(sy->s->env.publisher))
		return;
	snprintf(poll, sizeof(poll), "%ld", sy->s->env.cfg->sync_poll_s);
	snprintf(room, sizeof(room), "%u", SYNC_MAX_RUNS - sy->nruns);
	sy->sweeping = true;
	db_query(sy->s->env.db, sync_sweep_sql, 2, params, sync_on_sweep, sy);
}

struct syncer *sync_start(struct scheduler *s)
{
	struct syncer *sy = xcalloc(1, sizeof(*sy));

	sy->s = s;
	sy->runs_incremental = metrics_counter("scheduler_sync_runs_total", "Calendar syncs started, by kind.", "kind",
					       "incremental", NULL);
	sy->runs_full = metrics_counter("scheduler_sync_runs_total", "Calendar syncs started, by kind.", "kind", "full",
					NULL);
	sy->timer = xevent_new(s->env.base, -1, 0, sync_on_timer, sy);
	event_add(sy->timer, &(struct timeval){ 1, 0 });
	return sy;
}

void sync_stop(struct syncer *sy)
{
	if (sy != NULL && sy->timer != NULL) {
		event_free(sy->timer);
		sy->timer = NULL;
	}
}

unsigned sync_in_flight(const struct syncer *sy)
{
	return sy != NULL ? sy->nruns + (sy->sweeping ? 1 : 0) : 0;
}

void sync_free(struct syncer *sy)
{
	if (sy == NULL)
		return;
	sync_stop(sy);
	/* Only a run waiting out the rate limit is left here: its timer went with the loop. */
	while (sy->runs != NULL)
		sync_run_free(sy->runs);
	free(sy);
}

/* One scheduler.sync delivery: its request recorded, acked, and the user's run started. */
struct sync_request {
	struct scheduler *s;
	struct mq_delivery *d;
	struct message_sync msg;
	bool connected;		/* calendar.connected: the user also needs a channel now */
};

static void sync_request_free(struct sync_request *req)
{
	scheduler_job_done(req->s, req->d);
	message_sync_release(&req->msg);
	free(req);
}

static void sync_on_settled(bool settled, void *arg)
{
	(void)settled;
	sync_request_free(arg);
}

static void sync_on_requested(const struct db_result *r, void *arg)
{
	struct sync_request *req = arg;
	struct scheduler *s = req->s;

	if (scheduler_closing(s)) {
		sync_request_free(req);
		return;
	}
	if (r->status != DB_OK) {
		/* Back to the queue: the pool already waited for the database, so this is no tight loop. */
		log_warn("could not record a sync request; it goes back to the queue",
			 LOG_STR("user", req->msg.user_id),
			 LOG_STR("error", r->error));
		mq_nack(s->env.consumer, req->d->token, true);
		sync_request_free(req);
		return;
	}
	mq_ack(s->env.consumer, req->d->token);
	if (req->connected)
		channels_kick(s->channels);
	sync_start_run(s->syncer, req->msg.user_id);
	sync_request_free(req);
}

void sync_handle(struct scheduler *s, struct mq_delivery *d)
{
	struct sync_request *req = xcalloc(1, sizeof(*req));
	const char *why = NULL;
	const char *params[2];

	req->s = s;
	req->d = d;
	if (message_parse_sync(d->msg.body, d->msg.body_len, &req->msg, &why) < 0) {
		log_warn("sync request refused", LOG_STR("why", why), LOG_STR("message_id", d->msg.message_id),
			 LOG_STR("routing_key", d->msg.routing_key));
		metric_inc(metrics_counter("scheduler_messages_refused_total",
					   "Messages the scheduler refused and dead-lettered, by message and reason.",
					   "message", "sync", "reason", "malformed", NULL));
		retry_dead_letter(&s->env.retry, d, "malformed", why, sync_on_settled, req);
		return;
	}
	/* A new connection may be another calendar or account: its first sync is a full one. */
	req->connected = d->msg.routing_key != NULL && strcmp(d->msg.routing_key, TOPO_RK_CALENDAR_CONNECTED) == 0;
	if (req->connected)
		req->msg.full = 1;
	params[0] = req->msg.user_id;
	params[1] = req->msg.full ? "t" : "f";
	db_query(s->env.db, sync_request_sql, 2, params, sync_on_requested, req);
}
