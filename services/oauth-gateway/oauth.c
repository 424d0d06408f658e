/*
 * oauth: connecting a user's Google Calendar, and disconnecting it.
 *
 * /auth makes a single-use state (32 random bytes; only its SHA-256 is
 * stored, so a database reader cannot finish someone's connect) bound to
 * the user and to the browser that asked (a short-lived HttpOnly cookie
 * whose hash is stored beside the state), with a PKCE verifier sealed for
 * that user, valid 10 minutes, and sends the browser to Google. /callback
 * consumes the state in one statement, and only together with that cookie
 * (so a replayed or concurrent callback finds nothing, and a consent URL
 * handed to someone else cannot connect that person's Google account to
 * the user who asked for it: docs/reliability.md, "Attack surface"), trades
 * the code for tokens, insists on the calendar.events scope (a user can
 * untick it on Google's consent page; what was granted is then revoked),
 * reads the account's email and the calendar's time zone in parallel, and
 * stores the tokens sealed for the user. It always ends in a redirect to
 * FRONTEND_URL that says what happened; the target never comes from the
 * request. A connect then asks the scheduler (calendar.connected) to open a
 * push channel on the calendar and sync it at once; that is best effort, as
 * the scheduler's sweeps would do both a little later anyway.
 *
 * /disconnect clears the tokens and closes the user's push channels in one
 * statement, then stops those channels at Google (with the old access
 * token, or one refreshed from the old refresh token), and only then
 * revokes the grant, since a revoked grant can stop nothing. All of it waits
 * for Google only a few seconds: a user who wants out is out even when
 * Google is unreachable. A channel Google could not be told about expires
 * there on its own, and meanwhile the webhook refuses its pushes, since its
 * row says stopped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cJSON.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sodium.h>

#include "db.h"
#include "gateway.h"
#include "google.h"
#include "http.h"
#include "ids.h"
#include "log.h"
#include "mqbridge.h"
#include "topology.h"
#include "tz.h"
#include "vault.h"
#include "xmalloc.h"

#define OAUTH_SCOPE_EVENTS "https://www.googleapis.com/auth/calendar.events"
#define OAUTH_SCOPE_CALENDAR "https://www.googleapis.com/auth/calendar"
#define OAUTH_SCOPE_EMAIL "https://www.googleapis.com/auth/userinfo.email"
/* Reading busy time, for conflict checks (docs/google.md); a user who unticks it still connects. */
#define OAUTH_SCOPE_FREEBUSY "https://www.googleapis.com/auth/calendar.freebusy"
#define OAUTH_SCOPES OAUTH_SCOPE_EVENTS " " OAUTH_SCOPE_FREEBUSY " " OAUTH_SCOPE_EMAIL
#define OAUTH_RANDOM_BYTES 32
/*
 * The cookie that binds a connect to its browser. One value serves every
 * connect the browser starts while it lives, so two tabs connecting at once
 * do not undo each other; it lives as long as a state does.
 */
#define OAUTH_BROWSER_COOKIE "gcal_oauth_browser"
#define OAUTH_STATE_TTL_S 600
/*
 * Live states a user may hold; /auth drops the oldest beyond it. Each
 * /auth makes a row, so without a cap one signed-in client could grow the
 * table without end.
 */
#define OAUTH_STATES_PER_USER 5
/*
 * How long a disconnect or a refused connect waits for Google: a refused
 * connect for its revoke, a disconnect for its channel stops and revoke
 * together, of which the stops get OAUTH_STOP_WAIT_S at most.
 */
#define OAUTH_REVOKE_WAIT_S 5
#define OAUTH_STOP_WAIT_S 2
/* An access token with this long left still outlives the channel stops; one closer to its end is refreshed first. */
#define OAUTH_TOKEN_MARGIN_S "60"

/* The new row is not visible to the cap's DELETE, so it keeps the newest OAUTH_STATES_PER_USER - 1 of the others. */
static const char oauth_state_sql[] =
	"WITH gc AS (DELETE FROM oauth_states WHERE expires_at < now() - interval '1 day'),"
	" cap AS (DELETE FROM oauth_states WHERE state_hash IN (SELECT state_hash FROM oauth_states"
	"  WHERE user_id = $2 ORDER BY created_at DESC OFFSET $5::int - 1))"
	" INSERT INTO oauth_states (state_hash, user_id, code_verifier, expires_at, browser_hash)"
	" SELECT decode($1, 'hex'), u.id, $3, now() + make_interval(secs => $6::int), decode($4, 'hex')"
	" FROM users u WHERE u.id = $2"
	" RETURNING 1";

/*
 * Single use: of two callbacks racing with one state, exactly one gets the row. A callback from another
 * browser spends the state too (the last column says so): that browser now holds a code Google issued
 * for it, and whoever it hands the URL to must not be able to finish the connect with their own cookie.
 */
static const char oauth_consume_sql[] =
	"UPDATE oauth_states s SET used_at = now() FROM users u"
	" WHERE s.state_hash = decode($1, 'hex') AND s.used_at IS NULL AND s.expires_at > now() AND u.id = s.user_id"
	" RETURNING s.user_id, s.code_verifier, COALESCE(NULLIF(u.google_calendar_id, ''), 'primary'),"
	" COALESCE(s.browser_hash = decode($2, 'hex'), FALSE)";

enum { CONSUME_USER, CONSUME_VERIFIER, CONSUME_CALENDAR, CONSUME_SAME_BROWSER };

static const char oauth_store_sql[] =
	"UPDATE users SET google_access_token = $2, google_refresh_token = $3,"
	" google_token_expiry = now() + make_interval(secs => $4::double precision),"
	" google_calendar_connected = TRUE, google_calendar_id = $5, google_email = $6,"
	" google_calendar_timezone = COALESCE($7, google_calendar_timezone), google_scopes = $8,"
	" google_connected_at = now(), google_disconnected_at = NULL, google_disconnect_reason = NULL,"
	" google_disconnect_notified_at = NULL, google_disconnect_claimed_until = NULL"
	" WHERE id = $1 RETURNING 1";

/*
 * The user's own disconnect is not mailed: notified_at is set with it. The
 * user's open channels are closed in the same statement, so from its commit
 * the webhook refuses their pushes and no scheduler renews them. One row per
 * closed channel (one without a channel when none was open), each with the
 * old tokens (NULL when there was nothing to revoke) and whether the access
 * token is still good for the stops.
 */
static const char oauth_disconnect_sql[] =
	"WITH old AS (SELECT id, google_refresh_token, google_access_token,"
	"  COALESCE(google_token_expiry > now() + interval '" OAUTH_TOKEN_MARGIN_S " seconds', FALSE) AS fresh"
	"  FROM users WHERE id = $1 FOR UPDATE),"
	" gone AS (UPDATE users u SET google_access_token = NULL, google_refresh_token = NULL,"
	"  google_token_expiry = NULL, google_calendar_connected = FALSE,"
	"  google_disconnect_reason = 'user_disconnected', google_disconnected_at = now(),"
	"  google_disconnect_notified_at = now(), google_disconnect_claimed_until = NULL"
	"  FROM old WHERE u.id = old.id AND (u.google_calendar_connected OR u.google_refresh_token IS NOT NULL"
	"  OR u.google_access_token IS NOT NULL)"
	"  RETURNING old.google_refresh_token, old.google_access_token, old.fresh),"
	" closed AS (UPDATE calendar_watch_channels c SET status = 'stopped', stop_reason = 'user_disconnected',"
	"  stopped_at = now() FROM old WHERE c.user_id = old.id AND c.status IN ('opening', 'live')"
	"  RETURNING c.id, c.resource_id)"
	" SELECT gone.google_refresh_token, gone.google_access_token, gone.fresh, closed.id, closed.resource_id"
	" FROM (SELECT 1) one LEFT JOIN gone ON TRUE LEFT JOIN closed ON TRUE";

enum { DISC_REFRESH, DISC_ACCESS, DISC_FRESH, DISC_CHANNEL, DISC_RESOURCE };

static const char oauth_status_sql[] =
	"SELECT google_calendar_connected IS TRUE, google_email FROM users WHERE id = $1";

/* SHA-256 of a state or browser value, in hex for decode($1, 'hex'), into out (65 bytes). */
static void oauth_state_hash(const char *state, char *out)
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)state, strlen(state));
	sodium_bin2hex(out, crypto_hash_sha256_BYTES * 2 + 1, h, sizeof(h));
}

/* Zero and free a secret string; NULL is fine. */
static void oauth_wipe(char **s)
{
	vault_wipe_free(*s);
	*s = NULL;
}

char *oauth_result_url(const char *frontend_url, const char *reason)
{
	size_t cut = strcspn(frontend_url, "#");
	const char *sep = "?";
	char *query, *url;

	if (reason != NULL && (*reason == '\0' || reason[strspn(reason, "abcdefghijklmnopqrstuvwxyz_")] != '\0'))
		reason = "exchange_failed";
	query = reason ? xasprintf("google=error&reason=%s", reason) : xstrdup("google=connected");
	if (memchr(frontend_url, '?', cut) != NULL)
		sep = frontend_url[cut - 1] == '?' || frontend_url[cut - 1] == '&' ? "" : "&";
	url = xasprintf("%.*s%s%s%s", (int)cut, frontend_url, sep, query, frontend_url + cut);
	free(query);
	return url;
}

static void oauth_redirect_result(struct gateway *g, struct http_req *r, const char *reason)
{
	char *url = oauth_result_url(g->cfg.frontend_url, reason);

	http_redirect(r, url);
	free(url);
}

/* Revoke with a bounded wait. */

typedef void (*oauth_revoked_cb)(bool revoked, void *arg);

struct oauth_revoke {
	oauth_revoked_cb done;	/* NULL once called: the wait ended first */
	void *arg;
	struct event *timer;
};

static void oauth_revoke_finish(struct oauth_revoke *rv, bool revoked)
{
	oauth_revoked_cb done = rv->done;

	rv->done = NULL;
	if (done != NULL)
		done(revoked, rv->arg);
}

static void oauth_on_revoke_wait(evutil_socket_t fd, short what, void *arg)
{
	struct oauth_revoke *rv = arg;

	(void)fd;
	(void)what;
	log_warn("Google did not answer the revoke in time; it continues in the background");
	oauth_revoke_finish(rv, false);
}

static void oauth_on_revoked(const struct google_result *res, void *arg)
{
	struct oauth_revoke *rv = arg;
	/* An unknown or already revoked token is as revoked as it gets. */
	bool revoked = res->outcome == GOOGLE_OK ||
		       (res->status == 400 && res->reason != NULL && strcmp(res->reason, "invalid_token") == 0);

	if (!revoked)
		log_warn("Google refused or failed the revoke", LOG_INT("status", res->status),
			 LOG_STR("reason", res->reason), LOG_STR("outcome", google_outcome_name(res->outcome)));
	oauth_revoke_finish(rv, revoked);
	event_free(rv->timer);
	free(rv);
}

/* Revoke token at Google; done runs once, after Google answers or wait, whichever is first. */
static void oauth_revoke(struct gateway *g, const char *token, struct timeval wait, oauth_revoked_cb done, void *arg)
{
	struct oauth_revoke *rv = xcalloc(1, sizeof(*rv));

	rv->done = done;
	rv->arg = arg;
	rv->timer = xevent_new(g->base, -1, 0, oauth_on_revoke_wait, rv);
	event_add(rv->timer, &wait);
	google_revoke(g->google, token, oauth_on_revoked, rv);
}

/* GET /api/integrations/google/auth */

struct oauth_start {
	struct http_req *r;
	char *url;
};

static void oauth_start_free(struct oauth_start *st)
{
	http_req_unref(st->r);
	free(st->url);
	free(st);
}

static void oauth_on_state_stored(const struct db_result *res, void *arg)
{
	struct oauth_start *st = arg;
	struct http_req *r = st->r;
	const char *accept;

	if (http_req_done(r)) {
		oauth_start_free(st);
		return;
	}
	accept = http_req_header(r, "Accept");
	if (res->status != DB_OK) {
		log_error("could not store an OAuth state", LOG_STR("error", res->error));
		http_reply_error(r, 503, "unavailable", "the database is unavailable; try again");
	} else if (db_ntuples(res) == 0) {
		http_reply_error(r, 401, "unauthorized", "the token's user is not known here");
	} else if (accept != NULL && strstr(accept, "application/json") != NULL) {
		cJSON *body = cJSON_CreateObject();

		cJSON_AddStringToObject(body, "authUrl", st->url);
		http_reply_json(r, 200, body);
		cJSON_Delete(body);
	} else {
		http_redirect(r, st->url);
	}
	oauth_start_free(st);
}

/* s percent-encoded for a query value. The caller frees it. */
static char *oauth_encode(const char *s)
{
	char *e = evhttp_uriencode(s, -1, 0);

	if (e == NULL)
		abort();
	return e;
}

/* Google's authorization URL for state and challenge. The caller frees it. */
static char *oauth_auth_url(const struct gateway *g, const char *state, const char *challenge)
{
	const char *base = g->cfg.google_auth_url;
	char *client = oauth_encode(g->cfg.google_client_id);
	char *redirect = oauth_encode(g->cfg.google_redirect_uri);
	char *scope = oauth_encode(OAUTH_SCOPES);
	char *url = xasprintf("%s%sclient_id=%s&redirect_uri=%s&response_type=code&scope=%s&access_type=offline"
			      "&prompt=consent&include_granted_scopes=true&state=%s&code_challenge=%s"
			      "&code_challenge_method=S256",
			      base, strchr(base, '?') ? "&" : "?", client, redirect, scope, state, challenge);

	free(client);
	free(redirect);
	free(scope);
	return url;
}

/* Is value one this module could have set as the browser cookie (32 bytes, base64url)? */
static bool oauth_browser_valid(const char *value)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	return strlen(value) == sodium_base64_ENCODED_LEN(OAUTH_RANDOM_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1 &&
	       value[strspn(value, alphabet)] == '\0';
}

/*
 * The browser cookie's Path: the directory of GOOGLE_REDIRECT_URI's path, so
 * the browser sends it to both /auth (which keeps the value) and the callback,
 * and to nothing else. The caller frees it.
 */
static char *oauth_browser_path(const char *redirect_uri)
{
	struct evhttp_uri *u = evhttp_uri_parse(redirect_uri);
	const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
	const char *slash = path != NULL ? strrchr(path, '/') : NULL;
	char *out;

	if (slash == NULL || slash == path || path[strcspn(path, ";,\" \t\r\n")] != '\0')
		out = xstrdup("/");
	else
		out = xasprintf("%.*s", (int)(slash - path), path);
	if (u != NULL)
		evhttp_uri_free(u);
	return out;
}

/*
 * The browser value for a new connect: the one this browser already holds,
 * or a fresh one. Either way the answer sets it again (HttpOnly, SameSite=Lax
 * so Google's redirect back, a top-level navigation, carries it; Secure when
 * the callback is https), to live as long as the state about to be made. The
 * caller frees it.
 */
static char *oauth_browser_bind(struct gateway *g, struct http_req *r)
{
	char *value = http_req_cookie(r, OAUTH_BROWSER_COOKIE);
	char *path = oauth_browser_path(g->cfg.google_redirect_uri);
	bool secure = strncasecmp(g->cfg.google_redirect_uri, "https://", 8) == 0;
	char *cookie;

	if (value == NULL || !oauth_browser_valid(value)) {
		free(value);
		value = ids_random_b64url(OAUTH_RANDOM_BYTES);
	}
	cookie = xasprintf("%s=%s; Path=%s; Max-Age=%d; HttpOnly; SameSite=Lax%s", OAUTH_BROWSER_COOKIE, value,
			   path, OAUTH_STATE_TTL_S, secure ? "; Secure" : "");
	http_add_header(r, "Set-Cookie", cookie);
	free(cookie);
	free(path);
	return value;
}

void oauth_auth(struct gateway *g, struct http_req *r)
{
	struct oauth_start *st = xcalloc(1, sizeof(*st));
	char *state = ids_random_b64url(OAUTH_RANDOM_BYTES);
	char *verifier = ids_random_b64url(OAUTH_RANDOM_BYTES);
	char *browser = oauth_browser_bind(g, r);
	unsigned char digest[crypto_hash_sha256_BYTES];
	char hash[crypto_hash_sha256_BYTES * 2 + 1];
	char browser_hash[crypto_hash_sha256_BYTES * 2 + 1];
	char cap[16], ttl[16];
	char *challenge, *sealed;
	const char *params[6];

	/* PKCE S256 (RFC 7636): the challenge is base64url(SHA-256(verifier)). */
	crypto_hash_sha256(digest, (const unsigned char *)verifier, strlen(verifier));
	challenge = ids_b64url(digest, sizeof(digest));
	sealed = vault_seal(g->vault, verifier, http_req_user(r));
	oauth_state_hash(state, hash);
	oauth_state_hash(browser, browser_hash);
	snprintf(cap, sizeof(cap), "%d", OAUTH_STATES_PER_USER);
	snprintf(ttl, sizeof(ttl), "%d", OAUTH_STATE_TTL_S);
	st->r = r;
	http_req_ref(r);
	st->url = oauth_auth_url(g, state, challenge);
	params[0] = hash;
	params[1] = http_req_user(r);
	params[2] = sealed;
	params[3] = browser_hash;
	params[4] = cap;
	params[5] = ttl;
	db_query(g->db, oauth_state_sql, 6, params, oauth_on_state_stored, st);
	free(sealed);
	free(challenge);
	oauth_wipe(&verifier);
	oauth_wipe(&state);
	oauth_wipe(&browser);
}

/* GET /api/integrations/google/callback */

struct oauth_connect {
	struct gateway *g;
	struct http_req *r;
	char *user;
	char *calendar_id;
	char *code;
	char *verifier;
	char *access;
	char *refresh;
	char *scope;
	char *email;
	char *zone;
	double expires_in;
	int lookups;		/* userinfo and calendar probe still running */
	const char *failure;	/* the reason to redirect with once a revoke is done */
};

static void oauth_connect_free(struct oauth_connect *c)
{
	http_req_unref(c->r);
	free(c->user);
	free(c->calendar_id);
	oauth_wipe(&c->code);
	oauth_wipe(&c->verifier);
	oauth_wipe(&c->access);
	oauth_wipe(&c->refresh);
	free(c->scope);
	free(c->email);
	free(c->zone);
	free(c);
}

static void oauth_connect_end(struct oauth_connect *c, const char *reason)
{
	oauth_redirect_result(c->g, c->r, reason);
	oauth_connect_free(c);
}

static void oauth_on_failure_revoked(bool revoked, void *arg)
{
	struct oauth_connect *c = arg;

	log_info("the refused grant was revoked at Google", LOG_BOOL("revoked", revoked));
	oauth_connect_end(c, c->failure);
}

/* Give back what Google granted (the whole grant, through the refresh token), then redirect with reason. */
static void oauth_connect_fail_revoking(struct oauth_connect *c, const char *reason)
{
	c->failure = reason;
	oauth_revoke(c->g, c->refresh ? c->refresh : c->access, (struct timeval){ OAUTH_REVOKE_WAIT_S, 0 },
		     oauth_on_failure_revoked, c);
}

static void oauth_on_announced(enum mq_confirm outcome, void *arg)
{
	char *user = arg;

	if (outcome != MQ_CONFIRM_ACK)
		log_warn("the broker did not take calendar.connected; the scheduler's sweep opens the channel later",
			 LOG_STR("user", user),
			 LOG_STR("outcome", mq_confirm_name(outcome)));
	free(user);
}

/* Tell the scheduler that user connected (calendar.connected), so it opens a channel and syncs now. */
static void oauth_announce(struct gateway *g, const char *user)
{
	cJSON *body = cJSON_CreateObject();
	char id[IDS_UUID_LEN + 1];
	struct mq_message msg;
	char *text, *arg = xstrdup(user);

	cJSON_AddStringToObject(body, "user_id", user);
	text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	ids_uuid4(id);
	topology_calendar_message(&msg, TOPO_RK_CALENDAR_CONNECTED, text, id);
	if (mqbridge_publish(g->mq, &msg, false, oauth_on_announced, arg) < 0) {
		log_warn("broker unavailable: calendar.connected not sent; the scheduler's sweep opens the channel"
			 " later", LOG_STR("user", user));
		free(arg);
	}
	cJSON_free(text);
}

static void oauth_on_stored(const struct db_result *res, void *arg)
{
	struct oauth_connect *c = arg;

	if (http_req_done(c->r)) {
		oauth_connect_free(c);
		return;
	}
	if (res->status != DB_OK || db_ntuples(res) == 0) {
		log_error("could not store the Google tokens", LOG_STR("user", c->user), LOG_STR("error", res->error));
		oauth_connect_fail_revoking(c, "exchange_failed");
		return;
	}
	log_info("Google Calendar connected", LOG_STR("user", c->user), LOG_EMAIL("email", c->email),
		 LOG_STR("zone", c->zone));
	oauth_announce(c->g, c->user);
	oauth_connect_end(c, NULL);
}

static void oauth_store(struct oauth_connect *c)
{
	struct gateway *g = c->g;
	char *access = vault_seal(g->vault, c->access, c->user);
	char *refresh = vault_seal(g->vault, c->refresh, c->user);
	char *expires = xasprintf("%.0f", c->expires_in);
	const char *params[] = { c->user, access, refresh, expires, c->calendar_id, c->email, c->zone, c->scope };

	db_query(g->db, oauth_store_sql, 8, params, oauth_on_stored, c);
	free(access);
	free(refresh);
	free(expires);
}

static void oauth_lookup_done(struct oauth_connect *c)
{
	if (--c->lookups > 0)
		return;
	if (http_req_done(c->r)) {
		oauth_connect_free(c);
		return;
	}
	oauth_store(c);
}

static void oauth_on_userinfo(const struct google_result *res, void *arg)
{
	struct oauth_connect *c = arg;
	const char *email = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res->json, "email"));

	if (res->outcome == GOOGLE_OK && email != NULL && *email != '\0')
		c->email = xstrdup(email);
	else
		log_warn("could not read the Google account's email; connecting without it",
			 LOG_INT("status", res->status), LOG_STR("reason", res->reason));
	oauth_lookup_done(c);
}

static void oauth_on_probe(const struct google_result *res, void *arg)
{
	struct oauth_connect *c = arg;
	const char *zone = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res->json, "timeZone"));

	/* Unknown stays NULL: the scheduler then uses DEFAULT_TIMEZONE (docs/google.md, "Time zones"). */
	if (res->outcome == GOOGLE_OK && zone != NULL && tz_valid(zone))
		c->zone = xstrdup(zone);
	else
		log_warn("could not read the calendar's time zone; connecting without it",
			 LOG_INT("status", res->status), LOG_STR("reason", res->reason), LOG_STR("zone", zone));
	oauth_lookup_done(c);
}

/* Does the space-separated list hold word? */
bool oauth_has_scope(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t len;

		p += strspn(p, " ");
		len = strcspn(p, " ");
		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p += len;
	}
	return false;
}

static void oauth_on_tokens(const struct google_result *res, void *arg)
{
	struct oauth_connect *c = arg;
	const char *access = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res->json, "access_token"));
	const char *refresh = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res->json, "refresh_token"));
	const char *scope = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res->json, "scope"));
	const cJSON *expires = cJSON_GetObjectItemCaseSensitive(res->json, "expires_in");

	if (http_req_done(c->r)) {
		oauth_connect_free(c);
		return;
	}
	if (res->outcome != GOOGLE_OK || access == NULL || *access == '\0') {
		log_warn("Google refused the authorization code", LOG_STR("user", c->user),
			 LOG_INT("status", res->status), LOG_STR("reason", res->reason),
			 LOG_STR("outcome", google_outcome_name(res->outcome)));
		oauth_connect_end(c, "exchange_failed");
		return;
	}
	c->access = xstrdup(access);
	c->refresh = refresh != NULL && *refresh != '\0' ? xstrdup(refresh) : NULL;
	/* RFC 6749 §5.1: no scope in the answer means exactly what was asked for. */
	c->scope = xstrdup(scope != NULL ? scope : OAUTH_SCOPES);
	c->expires_in = cJSON_IsNumber(expires) && expires->valuedouble > 0 ? expires->valuedouble : 3600;
	if (!oauth_has_scope(c->scope, OAUTH_SCOPE_EVENTS) && !oauth_has_scope(c->scope, OAUTH_SCOPE_CALENDAR)) {
		log_info("the user did not grant calendar access", LOG_STR("user", c->user),
			 LOG_STR("granted", c->scope));
		oauth_connect_fail_revoking(c, "missing_scope");
		return;
	}
	if (c->refresh == NULL) {
		/* Without it the calendar stops working within the hour; refuse now rather than then. */
		log_warn("Google issued no refresh token", LOG_STR("user", c->user));
		oauth_connect_fail_revoking(c, "exchange_failed");
		return;
	}
	c->lookups = 2;
	google_userinfo(c->g->google, c->access, oauth_on_userinfo, c);
	google_calendar_probe(c->g->google, c->access, c->calendar_id, oauth_on_probe, c);
}

/* Whoever is signed in to the platform in this browser, if anyone: NULL or the user's id (the caller frees). */
static char *oauth_browser_user(struct gateway *g, struct http_req *r)
{
	char *user = NULL;
	const char *why;

	if (auth_user(g, r, true, &user, &why) < 0)
		return NULL;
	return user;
}

static void oauth_on_state(const struct db_result *res, void *arg)
{
	struct oauth_connect *c = arg;
	struct http_req *r = c->r;
	const char *error = http_req_query(r, "error");
	const char *code = http_req_query(r, "code");
	char *browser;

	if (http_req_done(r)) {
		oauth_connect_free(c);
		return;
	}
	if (res->status != DB_OK) {
		log_error("could not check an OAuth state", LOG_STR("error", res->error));
		oauth_connect_end(c, "exchange_failed");
		return;
	}
	if (db_ntuples(res) == 0) {
		log_info("OAuth callback with an unknown, used or expired state");
		oauth_connect_end(c, "invalid_state");
		return;
	}
	c->user = xstrdup(db_value(res, 0, CONSUME_USER));
	c->calendar_id = xstrdup(db_value(res, 0, CONSUME_CALENDAR));
	if (strcmp(db_value(res, 0, CONSUME_SAME_BROWSER), "t") != 0) {
		log_warn("OAuth callback from a browser that did not start the connect; the state is spent",
			 LOG_STR("user", c->user));
		oauth_connect_end(c, "invalid_state");
		return;
	}
	/*
	 * A state proves which user started the connect, not who finishes it. When the browser is
	 * signed in as someone else, someone handed it another user's link: the Google account that
	 * consents here must not end up in that other user's row.
	 */
	browser = oauth_browser_user(c->g, r);
	if (browser != NULL && strcmp(browser, c->user) != 0) {
		log_warn("OAuth callback finished by another signed-in user", LOG_STR("user", c->user));
		free(browser);
		oauth_connect_end(c, "invalid_state");
		return;
	}
	free(browser);
	if (error != NULL) {
		log_info("the user did not authorize Google Calendar", LOG_STR("user", c->user),
			 LOG_STR("error", error));
		oauth_connect_end(c, strcmp(error, "access_denied") == 0 ? "access_denied" : "exchange_failed");
		return;
	}
	if (code == NULL || *code == '\0') {
		log_warn("OAuth callback without a code", LOG_STR("user", c->user));
		oauth_connect_end(c, "exchange_failed");
		return;
	}
	if (vault_open(c->g->vault, db_value(res, 0, CONSUME_VERIFIER), c->user, &c->verifier) < 0) {
		log_error("cannot open the stored PKCE verifier", LOG_STR("user", c->user));
		oauth_connect_end(c, "exchange_failed");
		return;
	}
	c->code = xstrdup(code);
	google_exchange_code(c->g->google, c->code, c->verifier, oauth_on_tokens, c);
}

void oauth_callback(struct gateway *g, struct http_req *r)
{
	const char *state = http_req_query(r, "state");
	char *browser;
	struct oauth_connect *c;
	char hash[crypto_hash_sha256_BYTES * 2 + 1];
	char browser_hash[crypto_hash_sha256_BYTES * 2 + 1];
	const char *params[2];

	if (state == NULL || *state == '\0') {
		log_info("OAuth callback without a state");
		oauth_redirect_result(g, r, "invalid_state");
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->g = g;
	c->r = r;
	http_req_ref(r);
	oauth_state_hash(state, hash);
	/* Without the cookie the empty hash matches no browser: the state is spent all the same. */
	browser = http_req_cookie(r, OAUTH_BROWSER_COOKIE);
	browser_hash[0] = '\0';
	if (browser != NULL && oauth_browser_valid(browser))
		oauth_state_hash(browser, browser_hash);
	oauth_wipe(&browser);
	params[0] = hash;
	params[1] = browser_hash;
	db_query(g->db, oauth_consume_sql, 2, params, oauth_on_state, c);
}

/* POST /api/integrations/google/disconnect */

struct oauth_disconnect;

/* A push channel the disconnect closed, to stop at Google. */
struct oauth_channel {
	struct oauth_disconnect *d;
	char *id;
	char *resource_id;
};

struct oauth_disconnect {
	struct gateway *g;
	struct http_req *r;
	char *grant;			/* the token to revoke: the refresh token, else the access token */
	struct oauth_channel *channels;	/* those Google gave a resource id; the others it never opened */
	size_t nchannels;
	size_t stops;			/* the refresh or channels.stop calls not answered yet */
	bool revoking;			/* the stops are over (answered or out of time) and the revoke began */
	struct event *timer;		/* the stops' share of the wait */
	struct timespec start;		/* when the stops began (CLOCK_MONOTONIC) */
	int refs;			/* the answer still due, and each Google call out for the stops */
};

static void oauth_disconnect_release(struct oauth_disconnect *d)
{
	if (--d->refs > 0)
		return;
	http_req_unref(d->r);
	oauth_wipe(&d->grant);
	for (size_t i = 0; i < d->nchannels; i++) {
		free(d->channels[i].id);
		free(d->channels[i].resource_id);
	}
	free(d->channels);
	if (d->timer != NULL)
		event_free(d->timer);
	free(d);
}

/*
 * The disconnect's answer. When the grant could not be revoked the user is
 * still out of this service, but the Google account still lists it until the
 * user removes it there: say so rather than let them believe it is gone.
 */
static void oauth_disconnect_reply(struct oauth_disconnect *d, bool revoked)
{
	cJSON *body = cJSON_CreateObject();

	cJSON_AddBoolToObject(body, "connected", false);
	cJSON_AddNullToObject(body, "email");
	cJSON_AddBoolToObject(body, "revoked", revoked);
	if (!revoked)
		cJSON_AddStringToObject(body, "message",
					"Disconnected here, but Google could not be told to revoke this service's access."
					" Remove it in your Google Account under Security, Third-party apps with account"
					" access.");
	http_reply_json(d->r, 200, body);
	cJSON_Delete(body);
	oauth_disconnect_release(d);
}

static void oauth_on_disconnect_revoked(bool revoked, void *arg)
{
	struct oauth_disconnect *d = arg;

	log_info("Google Calendar disconnected by the user", LOG_STR("user", http_req_user(d->r)),
		 LOG_BOOL("revoked", revoked));
	oauth_disconnect_reply(d, revoked);
}

/* The stops are over: revoke the grant in what is left of the wait. Once. */
static void oauth_disconnect_revoke(struct oauth_disconnect *d, struct timeval wait)
{
	if (d->revoking)
		return;
	d->revoking = true;
	if (d->timer != NULL)
		event_del(d->timer);
	oauth_revoke(d->g, d->grant, wait, oauth_on_disconnect_revoked, d);
	oauth_wipe(&d->grant);
}

/* The stops are answered within their share of the wait: the revoke gets the rest of it. */
static void oauth_disconnect_stops_done(struct oauth_disconnect *d)
{
	struct timespec now;
	long long left_ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left_ms = OAUTH_REVOKE_WAIT_S * 1000LL - (now.tv_sec - d->start.tv_sec) * 1000LL -
		  (now.tv_nsec - d->start.tv_nsec) / 1000000;
	if (left_ms < 1000)
		left_ms = 1000;
	oauth_disconnect_revoke(d, (struct timeval){ left_ms / 1000, left_ms % 1000 * 1000 });
}

static void oauth_on_stop_wait(evutil_socket_t fd, short what, void *arg)
{
	struct oauth_disconnect *d = arg;

	(void)fd;
	(void)what;
	log_warn("Google did not answer every channel stop in time; revoking the grant anyway",
		 LOG_STR("user", http_req_user(d->r)), LOG_INT("unanswered", (long)d->stops));
	oauth_disconnect_revoke(d, (struct timeval){ OAUTH_REVOKE_WAIT_S - OAUTH_STOP_WAIT_S, 0 });
}

/* One stop answered; the last one starts the revoke. */
static void oauth_disconnect_stop_answered(struct oauth_disconnect *d)
{
	if (--d->stops == 0 && !d->revoking)
		oauth_disconnect_stops_done(d);
	oauth_disconnect_release(d);
}

static void oauth_on_channel_stopped(const struct google_result *res, void *arg)
{
	struct oauth_channel *ch = arg;

	/* A channel Google no longer knows (expired, or stopped before) is as stopped as it gets. */
	if (res->outcome == GOOGLE_OK || res->outcome == GOOGLE_NOT_FOUND)
		log_info("push channel stopped at Google", LOG_STR("channel", ch->id), LOG_INT("status", res->status));
	else
		log_warn("Google did not stop a push channel; it expires there on its own", LOG_STR("channel", ch->id),
			 LOG_INT("status", res->status), LOG_STR("reason", res->reason),
			 LOG_STR("outcome", google_outcome_name(res->outcome)));
	oauth_disconnect_stop_answered(ch->d);
}

/* channels.stop for every channel, with access (copied by lib/google, so the caller may wipe it at once). */
static void oauth_stop_channels(struct oauth_disconnect *d, const char *access)
{
	for (size_t i = 0; i < d->nchannels; i++) {
		d->stops++;
		d->refs++;
		google_channel_stop(d->g->google, access, d->channels[i].id, d->channels[i].resource_id,
				    oauth_on_channel_stopped, &d->channels[i]);
	}
}

/* The access token refreshed from the old refresh token, for the stops only: it is never stored. */
static void oauth_on_stop_refreshed(const struct google_result *res, void *arg)
{
	struct oauth_disconnect *d = arg;
	const char *access = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res->json, "access_token"));

	if (res->outcome == GOOGLE_OK && access != NULL && *access != '\0' && !d->revoking)
		oauth_stop_channels(d, access);
	else if (!d->revoking)
		log_warn("could not refresh the access token to stop the push channels; they expire at Google on"
			 " their own", LOG_STR("user", http_req_user(d->r)), LOG_INT("status", res->status),
			 LOG_STR("reason", res->reason), LOG_STR("outcome", google_outcome_name(res->outcome)));
	oauth_disconnect_stop_answered(d);
}

/*
 * Stop d's channels at Google, then revoke; sealed_access is the old access
 * token, usable when fresh, else the grant (the refresh token) buys a new one.
 */
static void oauth_disconnect_stop(struct oauth_disconnect *d, const char *sealed_access, bool fresh,
				  bool grant_is_refresh)
{
	const char *user = http_req_user(d->r);
	char *access = NULL;

	clock_gettime(CLOCK_MONOTONIC, &d->start);
	d->timer = xevent_new(d->g->base, -1, 0, oauth_on_stop_wait, d);
	event_add(d->timer, &(struct timeval){ OAUTH_STOP_WAIT_S, 0 });
	if (fresh && sealed_access != NULL && vault_open(d->g->vault, sealed_access, user, &access) == 0) {
		/* One stop more until every channels.stop is out, so none of their answers ends the stops early. */
		d->stops = 1;
		d->refs++;
		oauth_stop_channels(d, access);
		oauth_wipe(&access);
		oauth_disconnect_stop_answered(d);
	} else if (grant_is_refresh) {
		d->stops = 1;
		d->refs++;
		google_refresh(d->g->google, d->grant, oauth_on_stop_refreshed, d);
	} else {
		log_warn("no usable token to stop the push channels with; they expire at Google on their own",
			 LOG_STR("user", user));
		oauth_disconnect_stops_done(d);
	}
}

static void oauth_on_disconnected(const struct db_result *res, void *arg)
{
	struct oauth_disconnect *d = arg;
	const char *user = http_req_user(d->r);
	const char *sealed;
	int rows;

	if (http_req_done(d->r)) {
		oauth_disconnect_release(d);
		return;
	}
	if (res->status != DB_OK) {
		log_error("could not disconnect a calendar", LOG_STR("user", user), LOG_STR("error", res->error));
		http_reply_error(d->r, 503, "unavailable", "the database is unavailable; try again");
		oauth_disconnect_release(d);
		return;
	}
	rows = db_ntuples(res);
	for (int i = 0; i < rows; i++) {
		if (db_value(res, i, DISC_CHANNEL) == NULL)
			continue;
		log_info("push channel closed by the disconnect", LOG_STR("user", user),
			 LOG_STR("channel", db_value(res, i, DISC_CHANNEL)));
		if (db_value(res, i, DISC_RESOURCE) == NULL)
			continue;
		d->channels = xrealloc(d->channels, (d->nchannels + 1) * sizeof(*d->channels));
		d->channels[d->nchannels++] = (struct oauth_channel){
			.d = d,
			.id = xstrdup(db_value(res, i, DISC_CHANNEL)),
			.resource_id = xstrdup(db_value(res, i, DISC_RESOURCE)),
		};
	}
	/* The refresh token ends the whole grant; an access token alone only itself. */
	sealed = rows == 0 ? NULL : db_value(res, 0, DISC_REFRESH) ? db_value(res, 0, DISC_REFRESH)
								   : db_value(res, 0, DISC_ACCESS);
	if (sealed == NULL) {
		oauth_disconnect_reply(d, true);
		return;
	}
	if (vault_open(d->g->vault, sealed, user, &d->grant) < 0) {
		/* Sealed under a key this gateway no longer has (docs/operations.md, key rotation). */
		log_error("disconnected, but the stored token cannot be opened, so the grant was not revoked at"
			  " Google; the user was told to remove it in their Google Account",
			  LOG_STR("user", user));
		oauth_disconnect_reply(d, false);
		return;
	}
	if (d->nchannels == 0) {
		oauth_disconnect_revoke(d, (struct timeval){ OAUTH_REVOKE_WAIT_S, 0 });
		return;
	}
	oauth_disconnect_stop(d, db_value(res, 0, DISC_ACCESS), strcmp(db_value(res, 0, DISC_FRESH), "t") == 0,
			      db_value(res, 0, DISC_REFRESH) != NULL);
}

void oauth_disconnect(struct gateway *g, struct http_req *r)
{
	struct oauth_disconnect *d = xcalloc(1, sizeof(*d));
	const char *params[] = { http_req_user(r) };

	d->g = g;
	d->r = r;
	d->refs = 1;
	http_req_ref(r);
	db_query(g->db, oauth_disconnect_sql, 1, params, oauth_on_disconnected, d);
}

/* GET /api/integrations/google/status */

static void oauth_on_status(const struct db_result *res, void *arg)
{
	struct http_req *r = arg;
	bool connected;
	const char *email;
	cJSON *body;

	if (http_req_done(r)) {
		http_req_unref(r);
		return;
	}
	if (res->status != DB_OK) {
		log_error("could not read a calendar's status", LOG_STR("error", res->error));
		http_reply_error(r, 503, "unavailable", "the database is unavailable; try again");
		http_req_unref(r);
		return;
	}
	connected = db_ntuples(res) > 0 && strcmp(db_value(res, 0, 0), "t") == 0;
	email = connected ? db_value(res, 0, 1) : NULL;
	body = cJSON_CreateObject();
	cJSON_AddBoolToObject(body, "connected", connected);
	if (email != NULL)
		cJSON_AddStringToObject(body, "email", email);
	else
		cJSON_AddNullToObject(body, "email");
	http_reply_json(r, 200, body);
	cJSON_Delete(body);
	http_req_unref(r);
}

void oauth_status(struct gateway *g, struct http_req *r)
{
	const char *params[] = { http_req_user(r) };

	http_req_ref(r);
	db_read(g->db, oauth_status_sql, 1, params, oauth_on_status, r);
}
