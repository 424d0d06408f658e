/*
 * channels: the push channels that make Google tell the gateway when a
 * connected user's calendar changes (docs/sync.md, "Channels").
 *
 * Google offers no list of a project's channels and never renews one, so
 * calendar_watch_channels is the only record and a periodic pass keeps it
 * true: every connected user has one channel on the current
 * GOOGLE_WEBHOOK_URL and calendar; one close to its expiry, or on an old
 * address or calendar, is replaced by a new one that is live before the old
 * one is stopped, so no change falls between them; channels of users who
 * disconnected, past their expiry, or left `opening` by a crash are closed
 * in the table. The period is clamp(WATCH_RENEW_BEFORE_SECONDS / 4, 5 s,
 * 60 s): at least every minute, and often enough that a channel is renewed
 * well inside the renewal window however short tests make it.
 *
 * Several schedulers share the work through users.google_channel_claimed_until
 * (claimed with SKIP LOCKED, released when the user's job ends, or kept a
 * minute after a transient failure so Google is not asked in a tight loop);
 * the INSERT of the new row checks again that no current channel exists, so
 * a claim that expired under a slow job still yields one channel, not two.
 * The row is written `opening` before events.watch is called, so a crash
 * leaves a trace rather than a channel nobody knows of. Google's refusal
 * (400 for an address it will not call, 401 after a forced refresh) is
 * recorded `failed` with Google's message and not tried again until the user
 * reconnects or the address changes; a failure that may pass is recorded
 * "transient: ..." and tried again a minute later.
 *
 * The channel's token leaves this process only in the events.watch body;
 * the table holds its SHA-256, which the gateway compares.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "booking.h"
#include "db.h"
#include "google.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "scheduler.h"
#include "tokens.h"
#include "xmalloc.h"

#define CHANNELS_PERIOD_MIN_S 5
#define CHANNELS_PERIOD_MAX_S 60
/* Users per claim, which also bounds this process's Google calls in flight for channels. */
#define CHANNELS_BATCH 20
/* Rows per housekeeping statement. */
#define CHANNELS_SWEEP_BATCH "500"
/* Old channels stopped per user job; more wait for the next pass. */
#define CHANNELS_OLD_MAX "10"
#define CHANNELS_TOKEN_BYTES 32
#define CHANNELS_ABANDONED "abandoned while opening"
#define CHANNELS_TRANSIENT_PREFIX "transient: "

/* The calendar the user's channels watch, as the gateway stores it. */
#define CH_CALENDAR(u) "COALESCE(NULLIF(" u ".google_calendar_id, ''), 'primary')"

/*
 * Live channel c is not due for renewal. Half the lifetime Google granted
 * caps the window: a grant shorter than WATCH_RENEW_BEFORE_SECONDS would
 * otherwise be due at once and be replaced on every pass.
 */
#define CH_FRESH(c, renew)                                                                                   \
	"(" c ".expiration - now() > LEAST(make_interval(secs => " renew "::int), (" c ".expiration - " c \
	".opened_at) / 2))"

/* Channel c serves user u as things stand: the current address and calendar, opening or live and fresh. */
#define CH_CURRENT(c, u, addr, renew)                                                                  \
	"(" c ".address = " addr " AND " c ".calendar_id = " CH_CALENDAR(u) " AND (" c ".status = 'opening'" \
	" OR (" c ".status = 'live' AND " CH_FRESH(c, renew) ")))"

/*
 * Live channel s is to be stopped: another live channel serves its user,
 * and s does not, or both do and the other lives longer (so of two current
 * ones, say after a claim expired under a slow job, exactly one stays).
 */
#define CH_SUPERSEDED(s, u, addr, renew)                                                                       \
	"(" s ".status = 'live' AND EXISTS (SELECT 1 FROM calendar_watch_channels g WHERE g.user_id = " s       \
	".user_id AND g.id <> " s ".id AND g.status = 'live' AND " CH_CURRENT("g", u, addr, renew) " AND (NOT " \
	CH_CURRENT(s, u, addr, renew) " OR (g.expiration, g.id) > (" s ".expiration, " s ".id))))"

/* Google refused a channel to this address since the user last connected: do not ask again. */
#define CH_REFUSED(u, addr)                                                                                    \
	"EXISTS (SELECT 1 FROM calendar_watch_channels f WHERE f.user_id = " u ".id AND f.status = 'failed'"  \
	" AND f.address = " addr " AND f.created_at > COALESCE(" u ".google_connected_at, '-infinity')"       \
	" AND f.failure_reason NOT LIKE '" CHANNELS_TRANSIENT_PREFIX "%' AND f.failure_reason <> '" \
	CHANNELS_ABANDONED "')"

/* $1 address, $2 WATCH_RENEW_BEFORE_SECONDS, $3 CHANNELS_BATCH. */
static const char channels_claim_sql[] =
	"UPDATE users u SET google_channel_claimed_until = now() + interval '2 minutes'"
	" WHERE u.id IN (SELECT x.id FROM users x WHERE x.google_calendar_connected"
	"  AND x.google_refresh_token IS NOT NULL"
	"  AND (x.google_channel_claimed_until IS NULL OR x.google_channel_claimed_until < now())"
	"  AND ((NOT EXISTS (SELECT 1 FROM calendar_watch_channels c WHERE c.user_id = x.id"
	"   AND " CH_CURRENT("c", "x", "$1", "$2") ") AND NOT " CH_REFUSED("x", "$1") ")"
	"   OR EXISTS (SELECT 1 FROM calendar_watch_channels s WHERE s.user_id = x.id"
	"   AND " CH_SUPERSEDED("s", "x", "$1", "$2") "))"
	"  LIMIT $3::int FOR UPDATE SKIP LOCKED)"
	" RETURNING u.id, u.google_channel_claimed_until::text, " TOKENS_COLUMNS;

enum { CL_USER, CL_CLAIM, CL_TOKENS };

/* Nothing if a current channel appeared since the claim; $1 id, $2 user, $3 address, $4 hash, $5 renew. */
static const char channels_insert_sql[] =
	"INSERT INTO calendar_watch_channels (id, user_id, calendar_id, address, token_hash)"
	" SELECT $1, u.id, " CH_CALENDAR("u") ", $3, decode($4, 'hex') FROM users u"
	" WHERE u.id = $2 AND u.google_calendar_connected"
	"  AND NOT EXISTS (SELECT 1 FROM calendar_watch_channels c WHERE c.user_id = u.id"
	"   AND " CH_CURRENT("c", "u", "$3", "$5") ") AND NOT " CH_REFUSED("u", "$3")
	" RETURNING calendar_id";

/* Only from opening: a row stopped meanwhile (the user disconnected) stays stopped. */
static const char channels_live_sql[] =
	"UPDATE calendar_watch_channels SET status = 'live', resource_id = $2, opened_at = now(),"
	" expiration = COALESCE(to_timestamp($3::bigint / 1000.0), now() + make_interval(secs => $4::int))"
	" WHERE id = $1 AND status = 'opening'";

static const char channels_failed_sql[] =
	"UPDATE calendar_watch_channels SET status = 'failed', failure_reason = $2 WHERE id = $1 AND status = 'opening'";

/* $1 user, $2 address, $3 renew. */
static const char channels_old_sql[] =
	"SELECT s.id, s.resource_id, CASE WHEN s.address = $2 AND s.calendar_id = " CH_CALENDAR("u")
	" THEN 'renewed' ELSE 'address_changed' END"
	" FROM calendar_watch_channels s JOIN users u ON u.id = s.user_id"
	" WHERE s.user_id = $1 AND " CH_SUPERSEDED("s", "u", "$2", "$3")
	" ORDER BY s.expiration LIMIT " CHANNELS_OLD_MAX;

enum { OLD_ID, OLD_RESOURCE, OLD_REASON };

static const char channels_stopped_sql[] =
	"UPDATE calendar_watch_channels SET status = 'stopped', stop_reason = $2, stopped_at = now()"
	" WHERE id = $1 AND status = 'live'";

/* Only our own claim: one that ran out under a slow job may be another scheduler's by now. */
static const char channels_release_sql[] =
	"UPDATE users SET google_channel_claimed_until = CASE WHEN $3::boolean THEN now() + interval '1 minute' END"
	" WHERE id = $1 AND google_channel_claimed_until = $2::timestamptz";

/* No Google call: the grant is gone, and Google stops pushing at the expiry anyway. */
static const char channels_disconnected_sql[] =
	"UPDATE calendar_watch_channels SET status = 'stopped', stop_reason = 'user_disconnected', stopped_at = now()"
	" WHERE id IN (SELECT c.id FROM calendar_watch_channels c JOIN users u ON u.id = c.user_id"
	"  WHERE c.status IN ('opening', 'live')"
	"  AND NOT (COALESCE(u.google_calendar_connected, FALSE) AND u.google_refresh_token IS NOT NULL)"
	"  LIMIT " CHANNELS_SWEEP_BATCH " FOR UPDATE OF c SKIP LOCKED)";

static const char channels_expired_sql[] =
	"UPDATE calendar_watch_channels SET status = 'stopped', stop_reason = 'expired', stopped_at = now()"
	" WHERE id IN (SELECT id FROM calendar_watch_channels WHERE status = 'live' AND expiration <= now()"
	"  LIMIT " CHANNELS_SWEEP_BATCH " FOR UPDATE SKIP LOCKED)";

/* A crash between the INSERT and Google's answer: the channel may exist at Google, but nobody knows its resource. */
static const char channels_abandoned_sql[] =
	"UPDATE calendar_watch_channels SET status = 'failed', failure_reason = '" CHANNELS_ABANDONED "'"
	" WHERE id IN (SELECT id FROM calendar_watch_channels WHERE status = 'opening'"
	"  AND created_at < now() - interval '5 minutes' LIMIT " CHANNELS_SWEEP_BATCH " FOR UPDATE SKIP LOCKED)";

static const char channels_live_count_sql[] = "SELECT count(*) FROM calendar_watch_channels WHERE status = 'live'";

struct channels {
	struct scheduler *s;
	struct event *timer;
	long period_s;
	unsigned pending;	/* statements and user jobs of the current pass still running */
	bool again;		/* kicked while running, or a full batch claimed: run once more when done */
	struct metric *opened;
	struct metric *renewed;
	struct metric *stopped;
	struct metric *failed;
	struct metric *live;
};

enum channels_phase { CH_OPEN, CH_WATCH, CH_STOP };

/* A channel of the user to stop at Google and mark stopped (reason NULL: stop at Google only). */
struct channels_old {
	char *id;
	char *resource_id;
	char *reason;
};

/* One claimed user: open a channel if none serves them, then stop the ones it supersedes. */
struct channels_job {
	struct channels *ch;
	char *user_id;
	char *claim;		/* the claim as set, so the release clears only this one */
	char *access_token;	/* wiped when the job ends */
	char *token;		/* the new channel's token, wiped once Google answered */
	char *calendar_id;
	char *resource_id;
	char id[IDS_UUID_LEN + 1];
	enum channels_phase phase;
	bool refreshed;		/* one forced refresh after a 401, then Google's answer stands */
	bool hold;		/* a transient failure: keep the user claimed a minute */
	struct channels_old *old;
	size_t nold;
	size_t iold;
};

static void channels_run(struct channels *ch);
static void channels_job_on_token(enum tokens_status status, const char *access_token, void *arg);

static void channels_settle(struct channels *ch)
{
	if (--ch->pending == 0 && ch->again) {
		ch->again = false;
		channels_run(ch);
	}
}

static long channels_affected(const struct db_result *r)
{
	return r->status == DB_OK && r->res != NULL ? atol(PQcmdTuples(r->res)) : 0;
}

static void channels_job_free(struct channels_job *job)
{
	struct channels *ch = job->ch;

	for (size_t i = 0; i < job->nold; i++) {
		free(job->old[i].id);
		free(job->old[i].resource_id);
		free(job->old[i].reason);
	}
	free(job->old);
	xfree_secret(job->access_token);
	xfree_secret(job->token);
	free(job->user_id);
	free(job->claim);
	free(job->calendar_id);
	free(job->resource_id);
	free(job);
	channels_settle(ch);
}

/* The loop is exiting: the job ends without another statement; its claim and any opening row run out. */
static bool channels_job_released(struct channels_job *job)
{
	if (!scheduler_closing(job->ch->s))
		return false;
	channels_job_free(job);
	return true;
}

static void channels_job_on_released(const struct db_result *r, void *arg)
{
	struct channels_job *job = arg;

	if (r->status != DB_OK)
		log_warn("could not release a user's channel claim; it runs out by itself", LOG_STR("user", job->user_id),
			 LOG_STR("error", r->error));
	channels_job_free(job);
}

static void channels_job_end(struct channels_job *job)
{
	const char *params[] = { job->user_id, job->claim, job->hold ? "true" : "false" };

	if (channels_job_released(job))
		return;
	db_query(job->ch->s->env.db, channels_release_sql, 3, params, channels_job_on_released, job);
}

static void channels_stop_next(struct channels_job *job);

static void channels_job_on_marked(const struct db_result *r, void *arg)
{
	struct channels_job *job = arg;
	struct channels_old *o = &job->old[job->iold];

	if (channels_job_released(job))
		return;
	if (r->status != DB_OK)
		log_warn("could not mark a push channel stopped", LOG_STR("user", job->user_id),
			 LOG_STR("channel", o->id), LOG_STR("error", r->error));
	else if (channels_affected(r) > 0)
		metric_inc(job->ch->renewed);
	job->iold++;
	channels_stop_next(job);
}

static void channels_mark_stopped(struct channels_job *job)
{
	struct channels_old *o = &job->old[job->iold];
	const char *params[] = { o->id, o->reason };

	if (o->reason == NULL) {
		job->iold++;
		channels_stop_next(job);
		return;
	}
	db_query(job->ch->s->env.db, channels_stopped_sql, 2, params, channels_job_on_marked, job);
}

static void channels_job_on_stopped(const struct google_result *r, void *arg)
{
	struct channels_job *job = arg;
	struct channels_old *o = &job->old[job->iold];

	if (channels_job_released(job))
		return;
	if (r->outcome == GOOGLE_UNAUTHORIZED && !job->refreshed) {
		job->refreshed = true;
		tokens_get(job->ch->s->tokens, job->user_id, true, channels_job_on_token, job);
		return;
	}
	if (r->outcome == GOOGLE_TRANSIENT) {
		log_info("Google could not stop a push channel for now; the next pass tries again",
			 LOG_STR("user", job->user_id), LOG_STR("channel", o->id), LOG_INT("status", r->status),
			 LOG_STR("reason", r->reason));
		job->hold = true;
		job->iold++;
		channels_stop_next(job);
		return;
	}
	/* Refused for good: it pushes until its expiry at most, and the gateway refuses a stopped channel's pushes. */
	if (r->outcome != GOOGLE_OK && r->outcome != GOOGLE_NOT_FOUND)
		log_warn("Google refused to stop a push channel; marking it stopped", LOG_STR("user", job->user_id),
			 LOG_STR("channel", o->id), LOG_INT("status", r->status), LOG_STR("reason", r->reason),
			 LOG_STR("detail", r->message));
	else
		log_info("push channel stopped", LOG_STR("user", job->user_id), LOG_STR("channel", o->id),
			 LOG_STR("why", o->reason ? o->reason : "no longer wanted"));
	channels_mark_stopped(job);
}

static void channels_stop_one(void *arg)
{
	struct channels_job *job = arg;
	struct channels_old *o = &job->old[job->iold];

	if (channels_job_released(job))
		return;
	google_channel_stop(job->ch->s->google, job->access_token, o->id, o->resource_id, channels_job_on_stopped, job);
}

static void channels_stop_next(struct channels_job *job)
{
	if (job->iold == job->nold) {
		channels_job_end(job);
		return;
	}
	/* Without a resource id Google cannot be asked; the row is closed and Google stops at the expiry. */
	if (job->old[job->iold].resource_id == NULL) {
		channels_mark_stopped(job);
		return;
	}
	booking_rate_limited(job->ch->s, job->user_id, channels_stop_one, job);
}

static void channels_old_add(struct channels_job *job, const char *id, const char *resource_id, const char *reason)
{
	struct channels_old *o;

	job->old = xreallocarray(job->old, job->nold + 1, sizeof(*job->old));
	o = &job->old[job->nold++];
	o->id = xstrdup(id);
	o->resource_id = resource_id != NULL ? xstrdup(resource_id) : NULL;
	o->reason = reason != NULL ? xstrdup(reason) : NULL;
}

static void channels_job_on_old(const struct db_result *r, void *arg)
{
	struct channels_job *job = arg;

	if (channels_job_released(job))
		return;
	if (r->status != DB_OK) {
		log_warn("could not read a user's channels to stop", LOG_STR("user", job->user_id),
			 LOG_STR("error", r->error));
		job->hold = true;
	}
	for (int i = 0; r->status == DB_OK && i < db_ntuples(r); i++)
		channels_old_add(job, db_value(r, i, OLD_ID), db_value(r, i, OLD_RESOURCE), db_value(r, i, OLD_REASON));
	channels_stop_next(job);
}

/* Only once the new channel is live (or none was needed): stop what it supersedes. */
static void channels_find_old(struct channels_job *job)
{
	struct scheduler *s = job->ch->s;
	char renew[24];
	const char *params[] = { job->user_id, s->env.cfg->google_webhook_url, renew };

	job->phase = CH_STOP;
	job->refreshed = false;
	snprintf(renew, sizeof(renew), "%ld", s->env.cfg->watch_renew_before_s);
	db_query(s->env.db, channels_old_sql, 3, params, channels_job_on_old, job);
}

static void channels_job_on_live(const struct db_result *r, void *arg)
{
	struct channels_job *job = arg;

	if (channels_job_released(job))
		return;
	if (channels_affected(r) == 1) {
		metric_inc(job->ch->opened);
		log_info("push channel opened", LOG_STR("user", job->user_id), LOG_STR("channel", job->id),
			 LOG_STR("calendar", job->calendar_id));
	} else {
		/* Stopped meanwhile (the user disconnected) or not recorded: a channel nobody would answer for. */
		log_warn("a new push channel could not be recorded live; stopping it at Google",
			 LOG_STR("user", job->user_id), LOG_STR("channel", job->id),
			 LOG_STR("error", r->status != DB_OK ? r->error : "no longer opening"));
		channels_old_add(job, job->id, job->resource_id, NULL);
	}
	channels_find_old(job);
}

static void channels_job_on_failed(const struct db_result *r, void *arg)
{
	struct channels_job *job = arg;

	if (channels_job_released(job))
		return;
	if (r->status != DB_OK)
		log_warn("could not record a failed push channel; it is failed as abandoned in 5 minutes",
			 LOG_STR("user", job->user_id), LOG_STR("channel", job->id), LOG_STR("error", r->error));
	channels_job_end(job);
}

/* The new channel failed: recorded with why, and a transient failure holds the user a minute. */
static void channels_job_fail(struct channels_job *job, bool transient, const char *why)
{
	char *reason = xasprintf("%s%s", transient ? CHANNELS_TRANSIENT_PREFIX : "", why);
	const char *params[] = { job->id, reason };

	xfree_secret(job->token);
	job->token = NULL;
	job->hold = transient;
	metric_inc(job->ch->failed);
	db_query(job->ch->s->env.db, channels_failed_sql, 2, params, channels_job_on_failed, job);
	free(reason);
}

/* Google's expiration (ms since the epoch, a string) if it is one, else NULL: the row then gets now() + ttl. */
static const char *channels_expiration(const cJSON *json)
{
	const char *ms = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "expiration"));
	size_t n = ms != NULL ? strlen(ms) : 0;

	if (n == 0 || n > 15 || strspn(ms, "0123456789") != n)
		return NULL;
	return ms;
}

static void channels_job_on_watched(const struct google_result *r, void *arg)
{
	struct channels_job *job = arg;
	struct scheduler *s = job->ch->s;
	const char *resource = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r->json, "resourceId"));
	const char *why = r->message ? r->message : r->reason ? r->reason : google_outcome_name(r->outcome);
	char ttl[24];

	if (channels_job_released(job))
		return;
	if (r->outcome == GOOGLE_UNAUTHORIZED && !job->refreshed) {
		job->refreshed = true;
		tokens_get(s->tokens, job->user_id, true, channels_job_on_token, job);
		return;
	}
	if (r->outcome != GOOGLE_OK || resource == NULL) {
		bool transient = r->outcome == GOOGLE_TRANSIENT;

		if (r->outcome == GOOGLE_OK)
			why = "Google's answer has no resourceId";
		log_warn(transient ? "Google could not open a push channel for now; retrying in a minute"
				   : "Google refused a push channel; not retrying until the user reconnects or "
				     "GOOGLE_WEBHOOK_URL changes",
			 LOG_STR("user", job->user_id), LOG_STR("channel", job->id), LOG_INT("status", r->status),
			 LOG_STR("reason", r->reason), LOG_STR("detail", why));
		channels_job_fail(job, transient, why);
		return;
	}
	xfree_secret(job->token);
	job->token = NULL;
	job->resource_id = xstrdup(resource);
	snprintf(ttl, sizeof(ttl), "%ld", s->env.cfg->watch_ttl_s);
	{
		const char *params[] = { job->id, resource, channels_expiration(r->json), ttl };

		db_query(s->env.db, channels_live_sql, 4, params, channels_job_on_live, job);
	}
}

static void channels_watch(void *arg)
{
	struct channels_job *job = arg;
	struct scheduler *s = job->ch->s;

	if (channels_job_released(job))
		return;
	google_events_watch(s->google, job->access_token, job->calendar_id, job->id, s->env.cfg->google_webhook_url,
			    job->token, s->env.cfg->watch_ttl_s, channels_job_on_watched, job);
}

static void channels_job_on_inserted(const struct db_result *r, void *arg)
{
	struct channels_job *job = arg;

	if (channels_job_released(job))
		return;
	if (r->status != DB_OK || db_ntuples(r) == 0) {
		xfree_secret(job->token);
		job->token = NULL;
		if (r->status != DB_OK) {
			log_warn("could not record a new push channel; retrying in a minute",
				 LOG_STR("user", job->user_id), LOG_STR("error", r->error));
			job->hold = true;
			channels_job_end(job);
			return;
		}
		/* Another scheduler's channel serves the user now: only old ones may be left to stop. */
		channels_find_old(job);
		return;
	}
	job->calendar_id = xstrdup(db_value(r, 0, 0));
	job->phase = CH_WATCH;
	booking_rate_limited(job->ch->s, job->user_id, channels_watch, job);
}

/* A new id and token; the row holds the token's SHA-256, the job the token until Google has it. */
static void channels_open(struct channels_job *job)
{
	struct scheduler *s = job->ch->s;
	unsigned char digest[crypto_hash_sha256_BYTES];
	char hash[crypto_hash_sha256_BYTES * 2 + 1];
	char renew[24];
	const char *params[] = { job->id, job->user_id, s->env.cfg->google_webhook_url, hash, renew };

	ids_uuid4(job->id);
	job->token = ids_random_b64url(CHANNELS_TOKEN_BYTES);
	crypto_hash_sha256(digest, (const unsigned char *)job->token, strlen(job->token));
	sodium_bin2hex(hash, sizeof(hash), digest, sizeof(digest));
	snprintf(renew, sizeof(renew), "%ld", s->env.cfg->watch_renew_before_s);
	db_query(s->env.db, channels_insert_sql, 5, params, channels_job_on_inserted, job);
}

static void channels_job_on_token(enum tokens_status status, const char *access_token, void *arg)
{
	struct channels_job *job = arg;

	if (channels_job_released(job))
		return;
	if (status == TOKENS_OK) {
		xfree_secret(job->access_token);
		job->access_token = xstrdup(access_token);
		if (job->phase == CH_OPEN)
			channels_open(job);
		else
			booking_rate_limited(job->ch->s, job->user_id,
					     job->phase == CH_WATCH ? channels_watch : channels_stop_one, job);
		return;
	}
	/* Not connected or revoked: the pass marks the user's channels stopped, without Google. */
	job->hold = status == TOKENS_TRANSIENT;
	if (job->phase == CH_WATCH) {
		log_warn("no access token to open a push channel with", LOG_STR("user", job->user_id),
			 LOG_STR("channel", job->id));
		channels_job_fail(job, true, "could not obtain an access token");
		return;
	}
	if (job->hold)
		log_info("no access token for the user's push channels; retrying in a minute",
			 LOG_STR("user", job->user_id));
	channels_job_end(job);
}

static void channels_on_claimed(const struct db_result *r, void *arg)
{
	struct channels *ch = arg;

	if (r->status != DB_OK)
		log_warn("could not claim users for push channels", LOG_STR("error", r->error));
	else if (db_ntuples(r) == CHANNELS_BATCH)
		ch->again = true;
	for (int i = 0; r->status == DB_OK && i < db_ntuples(r) && !scheduler_closing(ch->s); i++) {
		struct channels_job *job = xcalloc(1, sizeof(*job));
		struct tokens_stored st;

		job->ch = ch;
		job->user_id = xstrdup(db_value(r, i, CL_USER));
		job->claim = xstrdup(db_value(r, i, CL_CLAIM));
		job->phase = CH_OPEN;
		ch->pending++;
		tokens_stored_from(r, i, CL_TOKENS, &st);
		tokens_get_stored(ch->s->tokens, job->user_id, &st, channels_job_on_token, job);
	}
	channels_settle(ch);
}

static void channels_on_disconnected(const struct db_result *r, void *arg)
{
	struct channels *ch = arg;

	if (r->status != DB_OK)
		log_warn("could not stop the channels of disconnected users", LOG_STR("error", r->error));
	metric_add(ch->stopped, (double)channels_affected(r));
	channels_settle(ch);
}

static void channels_on_expired(const struct db_result *r, void *arg)
{
	struct channels *ch = arg;

	if (r->status != DB_OK)
		log_warn("could not mark expired channels stopped", LOG_STR("error", r->error));
	metric_add(ch->stopped, (double)channels_affected(r));
	channels_settle(ch);
}

static void channels_on_abandoned(const struct db_result *r, void *arg)
{
	struct channels *ch = arg;

	if (r->status != DB_OK)
		log_warn("could not mark abandoned channels failed", LOG_STR("error", r->error));
	else if (channels_affected(r) > 0)
		log_warn("push channels left opening by a crash marked failed", LOG_INT("count", channels_affected(r)));
	metric_add(ch->failed, (double)channels_affected(r));
	channels_settle(ch);
}

static void channels_on_counted(const struct db_result *r, void *arg)
{
	struct channels *ch = arg;

	if (r->status == DB_OK && db_ntuples(r) == 1)
		metric_set(ch->live, atof(db_value(r, 0, 0)));
	channels_settle(ch);
}

static void channels_run(struct channels *ch)
{
	struct scheduler *s = ch->s;
	char renew[24], batch[16];
	const char *params[] = { s->env.cfg->google_webhook_url, renew, batch };

	/* One pass at a time per process; a slow database or Google makes passes rarer, not piled up. */
	if (ch->pending > 0) {
		ch->again = true;
		return;
	}
	if (worker_stopping(s->env.worker) || scheduler_closing(s))
		return;
	ch->pending = 3;
	db_query(s->env.db, channels_disconnected_sql, 0, NULL, channels_on_disconnected, ch);
	db_query(s->env.db, channels_expired_sql, 0, NULL, channels_on_expired, ch);
	db_read(s->env.db, channels_live_count_sql, 0, NULL, channels_on_counted, ch);
	if (s->env.cfg->google_webhook_url == NULL)
		return;
	ch->pending += 2;
	db_query(s->env.db, channels_abandoned_sql, 0, NULL, channels_on_abandoned, ch);
	snprintf(renew, sizeof(renew), "%ld", s->env.cfg->watch_renew_before_s);
	snprintf(batch, sizeof(batch), "%d", CHANNELS_BATCH);
	db_query(s->env.db, channels_claim_sql, 3, params, channels_on_claimed, ch);
}

static void channels_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct channels *ch = arg;

	(void)fd;
	(void)what;
	event_add(ch->timer, &(struct timeval){ ch->period_s, 0 });
	channels_run(ch);
}

struct channels *channels_start(struct scheduler *s)
{
	struct channels *ch = xcalloc(1, sizeof(*ch));
	long period = s->env.cfg->watch_renew_before_s / 4;
	const char *help = "Push channels changed, by action.";

	ch->s = s;
	ch->period_s = period < CHANNELS_PERIOD_MIN_S	? CHANNELS_PERIOD_MIN_S
		       : period > CHANNELS_PERIOD_MAX_S ? CHANNELS_PERIOD_MAX_S
							: period;
	ch->opened = metrics_counter("scheduler_channels_total", help, "action", "opened", NULL);
	ch->renewed = metrics_counter("scheduler_channels_total", help, "action", "renewed", NULL);
	ch->stopped = metrics_counter("scheduler_channels_total", help, "action", "stopped", NULL);
	ch->failed = metrics_counter("scheduler_channels_total", help, "action", "failed", NULL);
	ch->live = metrics_gauge("scheduler_channels_live", "Push channels live in the database (all schedulers).",
				 NULL);
	/* A first pass right after start, so a restarted scheduler catches up at once; then every period. */
	ch->timer = xevent_new(s->env.base, -1, 0, channels_on_timer, ch);
	event_add(ch->timer, &(struct timeval){ 1, 0 });
	return ch;
}

void channels_kick(struct channels *ch)
{
	if (ch != NULL)
		channels_run(ch);
}

void channels_stop(struct channels *ch)
{
	if (ch != NULL && ch->timer != NULL) {
		event_free(ch->timer);
		ch->timer = NULL;
	}
}

unsigned channels_in_flight(const struct channels *ch)
{
	return ch != NULL ? ch->pending : 0;
}

void channels_free(struct channels *ch)
{
	if (ch == NULL)
		return;
	channels_stop(ch);
	free(ch);
}
