/*
 * tokens: access tokens with single-flight refresh per user (see tokens.h).
 */
#include "tokens.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "google.h"
#include "log.h"
#include "metrics.h"
#include "scheduler.h"
#include "vault.h"
#include "xmalloc.h"

/* Refresh when the token has less than this left (docs/google.md, "Access tokens"). */
#define TOKENS_MARGIN_S 300

static const char tokens_load_sql[] = "SELECT " TOKENS_COLUMNS " FROM users u WHERE u.id = $1";

static const char tokens_store_sql[] =
	"UPDATE users SET google_access_token = $2,"
	" google_token_expiry = now() + make_interval(secs => $3::int)"
	" WHERE id = $1 AND google_calendar_connected AND google_refresh_token = $4";

/* Only the grant that failed is disconnected: a user who reconnected meanwhile keeps the new one. */
static const char tokens_disconnect_sql[] =
	"UPDATE users SET google_calendar_connected = FALSE, google_access_token = NULL,"
	" google_refresh_token = NULL, google_token_expiry = NULL, google_disconnected_at = now(),"
	" google_disconnect_reason = 'grant_revoked', google_disconnect_notified_at = NULL"
	" WHERE id = $1 AND google_refresh_token = $2";

struct tokens_waiter {
	struct tokens_waiter *next;
	tokens_cb cb;
	void *arg;
};

/* One refresh in flight for a user, with everyone waiting for it. */
struct tokens_flight {
	struct tokens_flight *next;
	struct tokens *t;
	char *user_id;
	char *sealed_refresh;	/* as stored: the statement that replaces the access token checks it */
	char *access_token;	/* plaintext once refreshed */
	enum tokens_status status;
	struct tokens_waiter *waiters;
};

struct tokens {
	struct scheduler *s;
	struct tokens_flight *flights;
	struct metric *refreshes;
	struct metric *revoked;
};

struct tokens_request {
	struct tokens *t;
	char *user_id;
	bool force;
	tokens_cb cb;
	void *arg;
};

struct tokens *tokens_new(struct scheduler *s)
{
	struct tokens *t = xcalloc(1, sizeof(*t));

	t->s = s;
	t->refreshes = metrics_counter("scheduler_token_refreshes_total", "Access token refreshes.", NULL);
	t->revoked = metrics_counter("scheduler_grants_revoked_total",
				     "Users found to have revoked access (invalid_grant).", NULL);
	return t;
}

static void tokens_flight_finish(struct tokens_flight *f)
{
	struct tokens_flight **pp;
	struct tokens_waiter *w, *next;

	for (pp = &f->t->flights; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	for (w = f->waiters; w != NULL; w = next) {
		next = w->next;
		w->cb(f->status, f->status == TOKENS_OK ? f->access_token : NULL, w->arg);
		free(w);
	}
	vault_wipe_free(f->access_token);
	free(f->sealed_refresh);
	free(f->user_id);
	free(f);
}

void tokens_free(struct tokens *t)
{
	if (t == NULL)
		return;
	while (t->flights != NULL) {
		t->flights->status = TOKENS_TRANSIENT;
		tokens_flight_finish(t->flights);
	}
	free(t);
}

static void tokens_on_stored(const struct db_result *r, void *arg)
{
	struct tokens_flight *f = arg;

	/* The token is good whether or not it could be stored; the next job refreshes again if not. */
	if (r->status != DB_OK)
		log_warn("could not store a refreshed access token", LOG_STR("user", f->user_id),
			 LOG_STR("error", r->error));
	f->status = TOKENS_OK;
	tokens_flight_finish(f);
}

static void tokens_on_disconnected(const struct db_result *r, void *arg)
{
	struct tokens_flight *f = arg;

	if (r->status != DB_OK) {
		log_warn("could not record a revoked grant; will retry", LOG_STR("user", f->user_id),
			 LOG_STR("error", r->error));
		f->status = TOKENS_TRANSIENT;
	} else {
		f->status = TOKENS_REVOKED;
		sweep_kick(f->t->s->sweep);
	}
	tokens_flight_finish(f);
}

static void tokens_on_refreshed(const struct google_result *r, void *arg)
{
	struct tokens_flight *f = arg;
	struct scheduler *s = f->t->s;
	const char *access;
	char *sealed;
	char ttl[24];
	double expires_in;

	if (r->outcome == GOOGLE_INVALID_GRANT) {
		const char *params[] = { f->user_id, f->sealed_refresh };

		metric_inc(f->t->revoked);
		log_warn("the user revoked Google access; disconnecting the calendar", LOG_STR("user", f->user_id),
			 LOG_STR("detail", r->message));
		db_query(s->env.db, tokens_disconnect_sql, 2, params, tokens_on_disconnected, f);
		return;
	}
	access = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r->json, "access_token"));
	if (r->outcome != GOOGLE_OK || access == NULL) {
		if (r->outcome == GOOGLE_PERMANENT)
			log_error("Google refused the token refresh; check GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET",
				  LOG_INT("status", r->status), LOG_STR("reason", r->reason));
		else
			log_warn("token refresh failed; will retry", LOG_STR("user", f->user_id),
				 LOG_INT("status", r->status), LOG_STR("reason", r->reason), LOG_STR("detail", r->message));
		f->status = TOKENS_TRANSIENT;
		tokens_flight_finish(f);
		return;
	}
	metric_inc(f->t->refreshes);
	expires_in = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r->json, "expires_in"));
	if (!(expires_in > 0 && expires_in < 86400 * 30))
		expires_in = 3600;
	f->access_token = xstrdup(access);
	sealed = vault_seal(s->vault, access, f->user_id);
	snprintf(ttl, sizeof(ttl), "%d", (int)expires_in);
	{
		const char *params[] = { f->user_id, sealed, ttl, f->sealed_refresh };

		db_query(s->env.db, tokens_store_sql, 4, params, tokens_on_stored, f);
	}
	free(sealed);
}

static struct tokens_flight *tokens_find_flight(struct tokens *t, const char *user_id)
{
	for (struct tokens_flight *f = t->flights; f != NULL; f = f->next)
		if (strcmp(f->user_id, user_id) == 0)
			return f;
	return NULL;
}

static void tokens_wait(struct tokens_flight *f, tokens_cb cb, void *arg)
{
	struct tokens_waiter *w = xcalloc(1, sizeof(*w));

	w->cb = cb;
	w->arg = arg;
	w->next = f->waiters;
	f->waiters = w;
}

static void tokens_request_free(struct tokens_request *req)
{
	free(req->user_id);
	free(req);
}

bool tokens_stored_connected(const struct tokens_stored *st)
{
	return st->connected != NULL && strcmp(st->connected, "t") == 0 && st->sealed_refresh != NULL;
}

/* The stored access token in plaintext (wiped and freed by the caller) if it is good for a while yet. */
static char *tokens_open_stored(struct tokens *t, const char *user_id, const struct tokens_stored *st)
{
	char *plain = NULL;

	if (st->sealed_access == NULL || st->seconds_left == NULL || atoll(st->seconds_left) <= TOKENS_MARGIN_S ||
	    vault_open(t->s->vault, st->sealed_access, user_id, &plain) < 0)
		return NULL;
	return plain;
}

/* Answer cb from the stored columns alone when they decide it: not connected, or (unless force) a good token. */
static bool tokens_answer_stored(struct tokens *t, const char *user_id, bool force, const struct tokens_stored *st,
				 tokens_cb cb, void *arg)
{
	char *plain;

	if (!tokens_stored_connected(st)) {
		cb(TOKENS_NOT_CONNECTED, NULL, arg);
		return true;
	}
	if (force || (plain = tokens_open_stored(t, user_id, st)) == NULL)
		return false;
	cb(TOKENS_OK, plain, arg);
	vault_wipe_free(plain);
	return true;
}

/* A token from the user's stored columns: the one stored, or a refresh (joined if one is in flight). */
static void tokens_resolve(struct tokens *t, const char *user_id, bool force, const struct tokens_stored *st,
			   tokens_cb cb, void *arg)
{
	struct tokens_flight *f;
	char *plain = NULL;

	if (tokens_answer_stored(t, user_id, force, st, cb, arg))
		return;
	f = tokens_find_flight(t, user_id);
	if (f != NULL) {
		tokens_wait(f, cb, arg);
		return;
	}
	if (vault_open(t->s->vault, st->sealed_refresh, user_id, &plain) < 0) {
		/* Not a transient condition: retrying cannot make the key or the row right. */
		log_error("cannot open the stored refresh token (wrong TOKEN_ENCRYPTION_KEY, or a row moved between "
			  "users); the user must reconnect", LOG_STR("user", user_id));
		cb(TOKENS_NOT_CONNECTED, NULL, arg);
		return;
	}
	f = xcalloc(1, sizeof(*f));
	f->t = t;
	f->user_id = xstrdup(user_id);
	f->sealed_refresh = xstrdup(st->sealed_refresh);
	f->next = t->flights;
	t->flights = f;
	tokens_wait(f, cb, arg);
	google_refresh(t->s->google, plain, tokens_on_refreshed, f);
	vault_wipe_free(plain);
}

static void tokens_on_loaded(const struct db_result *r, void *arg)
{
	struct tokens_request *req = arg;

	if (r->status != DB_OK) {
		req->cb(TOKENS_TRANSIENT, NULL, req->arg);
	} else {
		struct tokens_stored st = { 0 };

		if (db_ntuples(r) > 0)
			tokens_stored_from(r, 0, 0, &st);
		tokens_resolve(req->t, req->user_id, req->force, &st, req->cb, req->arg);
	}
	tokens_request_free(req);
}

void tokens_stored_from(const struct db_result *r, int row, int col, struct tokens_stored *st)
{
	st->connected = db_value(r, row, col);
	st->sealed_access = db_value(r, row, col + 1);
	st->sealed_refresh = db_value(r, row, col + 2);
	st->seconds_left = db_value(r, row, col + 3);
}

void tokens_get_stored(struct tokens *t, const char *user_id, const struct tokens_stored *stored, tokens_cb cb,
		       void *arg)
{
	if (tokens_answer_stored(t, user_id, false, stored, cb, arg))
		return;
	/*
	 * Due for a refresh: read the row again first. These columns may be older than a refresh that
	 * finished since, and refreshing from them would ask Google again.
	 */
	tokens_get(t, user_id, false, cb, arg);
}

void tokens_get(struct tokens *t, const char *user_id, bool force_refresh, tokens_cb cb, void *arg)
{
	struct tokens_request *req = xcalloc(1, sizeof(*req));
	const char *params[] = { user_id };

	req->t = t;
	req->user_id = xstrdup(user_id);
	req->force = force_refresh;
	req->cb = cb;
	req->arg = arg;
	db_query(t->s->env.db, tokens_load_sql, 1, params, tokens_on_loaded, req);
}
