/*
 * google: OAuth and Calendar calls with classified results (see google.h).
 */
#include "google.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <sodium.h>

#include "cfg.h"
#include "datetime.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define GOOGLE_TIMEOUT_MS 20000
/*
 * Quick retries follow Google's backoff (1 s, then 2 s, each plus up to 1 s
 * of jitter) inside the process. Most 5xx and 429 answers are blips that are
 * gone a second later; sending each one through a retry tier instead costs
 * 5 s or more and two broker round trips, and a booking unlucky several times
 * in a row ends up on the minutes-long tiers. Longer waits are the tiers' job.
 */
#define GOOGLE_QUICK_RETRIES 2
#define GOOGLE_QUICK_BASE_MS 1000
#define GOOGLE_QUICK_JITTER_MS 1000
#define GOOGLE_QUICK_MAX_RETRY_AFTER_S 4
/* A call that failed without an answer this quickly was refused, not timed out: worth a quick retry. */
#define GOOGLE_QUICK_MAX_SILENT_S 2.0

struct google {
	struct httpc *http;
	const struct config *cfg;
	struct event_base *base;
	struct google_call *calls;	/* every call not yet answered, for google_free() */
	int quick_retries;
};

/* One call from google_send() to its callback, quick retries included. */
struct google_call {
	struct google *g;	/* NULL once google_free() ran: the answer then goes straight to cb */
	struct google_call *prev, *next;
	google_cb cb;
	void *arg;
	const char *op;
	bool oauth;		/* token/revoke endpoints answer OAuth errors, not Calendar errors */
	int retries_left;
	int attempt;
	char *method, *url, *auth, *ctype, *body;	/* kept for a retry; auth and body are wiped on free */
	struct event *timer;	/* a quick retry is waiting */
};

static const char *const google_outcome_names[] = {
	"ok", "transient", "unauthorized", "invalid_grant", "not_found", "duplicate", "gone", "permanent",
	"full_sync_required",
};

const char *google_outcome_name(enum google_outcome outcome)
{
	return google_outcome_names[outcome];
}

struct google *google_new(struct httpc *http, const struct config *cfg)
{
	struct google *g = xcalloc(1, sizeof(*g));

	g->http = http;
	g->cfg = cfg;
	g->base = httpc_base(http);
	g->quick_retries = GOOGLE_QUICK_RETRIES;
	return g;
}

void google_set_quick_retries(struct google *g, int retries)
{
	g->quick_retries = retries > 0 ? retries : 0;
}

static void google_call_unlink(struct google_call *call)
{
	if (call->g == NULL)
		return;
	if (call->prev != NULL)
		call->prev->next = call->next;
	else
		call->g->calls = call->next;
	if (call->next != NULL)
		call->next->prev = call->prev;
	call->g = NULL;
}

static void google_call_free(struct google_call *call)
{
	google_call_unlink(call);
	if (call->timer != NULL)
		event_free(call->timer);
	xfree_secret(call->auth);
	xfree_secret(call->body);
	free(call->method);
	free(call->url);
	free(call->ctype);
	free(call);
}

static void google_deliver(struct google_call *call, const struct google_result *res)
{
	google_call_unlink(call);
	call->cb(res, call->arg);
	google_call_free(call);
}

/*
 * Calls waiting for a quick retry end now with a transient result, so their
 * owners retry them later; calls still in flight lose their retries and
 * answer whenever httpc gives them up.
 */
void google_free(struct google *g)
{
	if (g == NULL)
		return;
	while (g->calls != NULL) {
		struct google_call *call = g->calls;
		struct google_result res = { .outcome = GOOGLE_TRANSIENT, .message = "shutting down",
					     .retry_after_s = -1 };

		google_call_unlink(call);
		if (call->timer != NULL)
			google_deliver(call, &res);
	}
	free(g);
}

/* Calendar errors carry error.errors[0].reason; OAuth errors a string "error". */
static void google_error_fields(const cJSON *json, const char **reason, const char **message)
{
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(json, "error");

	*reason = NULL;
	*message = NULL;
	if (cJSON_IsString(err)) {
		*reason = err->valuestring;
		*message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "error_description"));
		return;
	}
	if (cJSON_IsObject(err)) {
		const cJSON *errors = cJSON_GetObjectItemCaseSensitive(err, "errors");
		const cJSON *first = cJSON_GetArrayItem(errors, 0);

		*message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"));
		*reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(first, "reason"));
	}
}

static enum google_outcome google_classify(long status, const char *reason, bool oauth)
{
	if (status >= 200 && status < 300)
		return GOOGLE_OK;
	if (status == 0 || status >= 500 || status == 429)
		return GOOGLE_TRANSIENT;
	if (oauth && reason != NULL && strcmp(reason, "invalid_grant") == 0)
		return GOOGLE_INVALID_GRANT;
	switch (status) {
	case 401:
		return GOOGLE_UNAUTHORIZED;
	case 403:
		/* Rate and usage limits lift by themselves; missing access does not. */
		if (reason != NULL && (strcmp(reason, "rateLimitExceeded") == 0 ||
				       strcmp(reason, "userRateLimitExceeded") == 0 ||
				       strcmp(reason, "quotaExceeded") == 0))
			return GOOGLE_TRANSIENT;
		return GOOGLE_PERMANENT;
	case 404:
		return GOOGLE_NOT_FOUND;
	case 409:
		return reason != NULL && strcmp(reason, "duplicate") == 0 ? GOOGLE_DUPLICATE : GOOGLE_TRANSIENT;
	case 410:
		if (reason != NULL && strcmp(reason, "fullSyncRequired") == 0)
			return GOOGLE_FULL_SYNC;
		return reason != NULL && strcmp(reason, "deleted") == 0 ? GOOGLE_GONE : GOOGLE_PERMANENT;
	default:
		return GOOGLE_PERMANENT;
	}
}

/* Zero every name and string of item, its siblings and their children (nesting is bounded by cJSON's parser). */
static void google_json_wipe(cJSON *item)
{
	for (; item != NULL; item = item->next) {
		if (item->string != NULL)
			xwipe(item->string, strlen(item->string));
		if (item->valuestring != NULL)
			xwipe(item->valuestring, strlen(item->valuestring));
		google_json_wipe(item->child);
	}
}

void google_json_free(cJSON *json)
{
	google_json_wipe(json);
	cJSON_Delete(json);
}

void google_read_response(long status, const char *body, size_t len, bool oauth, struct google_result *out)
{
	memset(out, 0, sizeof(*out));
	out->status = status;
	out->retry_after_s = -1;
	if (len > 0)
		out->json = cJSON_ParseWithLength(body, len);
	google_error_fields(out->json, &out->reason, &out->message);
	out->outcome = google_classify(status, out->reason, oauth);
}

static void google_start(struct google_call *call);

static void google_on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
	struct google_call *call = arg;

	(void)fd;
	(void)what;
	event_free(call->timer);
	call->timer = NULL;
	google_start(call);
}

/*
 * Schedule a quick retry of a transient failure, or return false when the
 * call has none left, Google asked for a longer wait, or no answer came for
 * long enough to be a timeout (a retry would hold the caller another 20 s).
 */
static bool google_retry_quickly(struct google_call *call, const struct httpc_response *r,
				 const struct google_result *res)
{
	long delay_ms;

	if (call->g == NULL || call->retries_left <= 0 || res->outcome != GOOGLE_TRANSIENT)
		return false;
	if (r->result == CURLE_ABORTED_BY_CALLBACK || (res->status == 0 && r->seconds > GOOGLE_QUICK_MAX_SILENT_S))
		return false;
	if (res->retry_after_s > GOOGLE_QUICK_MAX_RETRY_AFTER_S)
		return false;
	delay_ms = ((long)GOOGLE_QUICK_BASE_MS << call->attempt) + (long)randombytes_uniform(GOOGLE_QUICK_JITTER_MS + 1);
	if (res->retry_after_s * 1000 > delay_ms)
		delay_ms = res->retry_after_s * 1000;
	call->retries_left--;
	call->attempt++;
	metric_inc(metrics_counter("google_quick_retries_total", "Transient Google failures retried in-process.",
				   "op", call->op, NULL));
	log_debug("Google failed for a moment; retrying the call", LOG_STR("op", call->op),
		  LOG_INT("status", res->status), LOG_STR("reason", res->reason), LOG_INT("delay_ms", delay_ms));
	call->timer = xevent_new(call->g->base, -1, 0, google_on_retry_timer, call);
	event_add(call->timer, &(struct timeval){ delay_ms / 1000, (delay_ms % 1000) * 1000 });
	return true;
}

static void google_on_response(const struct httpc_response *r, void *arg)
{
	struct google_call *call = arg;
	struct google_result res = { 0 };

	google_read_response(r->result == CURLE_OK ? r->status : 0, r->body, r->body_len, call->oauth, &res);
	res.retry_after_s = r->retry_after_s;
	res.seconds = r->seconds;
	if (r->result != CURLE_OK)
		res.message = r->error;

	metric_observe(metrics_histogram("google_request_duration_seconds", "Google API calls by operation and outcome.",
					 metrics_latency_buckets, metrics_latency_nbuckets, "op", call->op,
					 "outcome", google_outcome_name(res.outcome), NULL),
		       r->seconds);
	if (res.outcome != GOOGLE_OK)
		log_debug("google call failed", LOG_STR("op", call->op), LOG_INT("status", res.status),
			  LOG_STR("reason", res.reason), LOG_STR("detail", res.message));

	if (!google_retry_quickly(call, r, &res))
		google_deliver(call, &res);
	/* A token endpoint's answer holds the tokens themselves. */
	google_json_free(res.json);
}

/*
 * Send the call's request (the call is linked: google_free() ends waiting
 * calls before their timers can fire); if curl refuses it outright, the
 * callback runs at once with a transient result.
 */
static void google_start(struct google_call *call)
{
	const char *headers[4] = { "Accept: application/json" };
	struct httpc_request req = { 0 };
	int n = 1;

	if (call->auth != NULL)
		headers[n++] = call->auth;
	if (call->ctype != NULL)
		headers[n++] = call->ctype;
	headers[n] = NULL;
	req.method = call->method;
	req.url = call->url;
	req.headers = headers;
	req.body = call->body;
	req.body_len = call->body ? strlen(call->body) : 0;
	req.timeout_ms = GOOGLE_TIMEOUT_MS;
	if (httpc_send(call->g->http, &req, google_on_response, call) < 0) {
		struct google_result res = { .outcome = GOOGLE_TRANSIENT, .message = "request refused by libcurl",
					     .retry_after_s = -1 };

		log_error("cannot start a Google request", LOG_STR("op", call->op));
		google_deliver(call, &res);
	}
}

/* One request to Google, as google_send() takes it; what it points at is copied. */
struct google_request {
	const char *op;			/* a static name for logs and metrics ("events.insert") */
	const char *method;
	const char *url;
	const char *access_token;	/* NULL: no Authorization header */
	const char *content_type;	/* with body; NULL for none */
	const char *body;
	const cJSON *json;		/* instead of content_type and body: sent as application/json */
	bool oauth;	/* the token endpoint answers: invalid_grant there means the grant is dead */
	/* Safe to repeat (a read, a patch, a delete, an insert with our own event id, a refresh): transient
	 * failures get quick retries before the caller sees them. */
	bool retry;
};

/* Start one call; cb gets its result once. */
static void google_send(struct google *g, const struct google_request *rq, google_cb cb, void *arg)
{
	struct google_call *call = xcalloc(1, sizeof(*call));

	call->g = g;
	call->cb = cb;
	call->arg = arg;
	call->op = rq->op;
	call->oauth = rq->oauth;
	call->retries_left = rq->retry ? g->quick_retries : 0;
	call->method = xstrdup(rq->method);
	call->url = xstrdup(rq->url);
	call->auth = rq->access_token ? xasprintf("Authorization: Bearer %s", rq->access_token) : NULL;
	if (rq->json != NULL) {
		/* cJSON allocates with malloc(): the text is the call's body as it is, wiped when freed. */
		call->ctype = xstrdup("Content-Type: application/json");
		call->body = cJSON_PrintUnformatted(rq->json);
		if (call->body == NULL)
			abort();
	} else {
		call->ctype = rq->content_type ? xasprintf("Content-Type: %s", rq->content_type) : NULL;
		call->body = rq->body ? xstrdup(rq->body) : NULL;
	}
	call->next = g->calls;
	if (g->calls != NULL)
		g->calls->prev = call;
	g->calls = call;
	google_start(call);
}

/* s percent-encoded; the caller frees it (with xfree_secret() when s is a secret: the copies here are wiped). */
static char *google_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *copy;

	if (e == NULL)
		abort();
	copy = xstrdup(e);
	xwipe(e, strlen(e));
	curl_free(e);
	return copy;
}

/*
 * key=value&... with every value form-encoded; pairs end with a NULL key. The
 * values are tokens, codes and the client secret: every copy made on the way
 * is wiped, and the caller frees the form with xfree_secret().
 */
static char *google_form(const char *first_key, ...)
{
	va_list ap;
	char *out = xstrdup("");
	const char *key = first_key;

	va_start(ap, first_key);
	while (key != NULL) {
		const char *val = va_arg(ap, const char *);
		char *ev = google_escape(val ? val : "");
		char *next = xasprintf("%s%s%s=%s", out, *out ? "&" : "", key, ev);

		xfree_secret(ev);
		xfree_secret(out);
		out = next;
		key = va_arg(ap, const char *);
	}
	va_end(ap);
	return out;
}

void google_exchange_code(struct google *g, const char *code, const char *code_verifier, google_cb cb, void *arg)
{
	char *form = google_form("grant_type", "authorization_code", "code", code, "code_verifier", code_verifier,
				 "redirect_uri", g->cfg->google_redirect_uri, "client_id", g->cfg->google_client_id,
				 "client_secret", g->cfg->google_client_secret, NULL);
	struct google_request rq = { .op = "oauth.token", .method = "POST", .url = g->cfg->google_token_url,
				     .content_type = "application/x-www-form-urlencoded", .body = form, .oauth = true };

	google_send(g, &rq, cb, arg);
	xfree_secret(form);
}

void google_refresh(struct google *g, const char *refresh_token, google_cb cb, void *arg)
{
	char *form = google_form("grant_type", "refresh_token", "refresh_token", refresh_token, "client_id",
				 g->cfg->google_client_id, "client_secret", g->cfg->google_client_secret, NULL);
	struct google_request rq = { .op = "oauth.refresh", .method = "POST", .url = g->cfg->google_token_url,
				     .content_type = "application/x-www-form-urlencoded", .body = form, .oauth = true,
				     .retry = true };

	google_send(g, &rq, cb, arg);
	xfree_secret(form);
}

void google_revoke(struct google *g, const char *token, google_cb cb, void *arg)
{
	char *form = google_form("token", token, NULL);
	struct google_request rq = { .op = "oauth.revoke", .method = "POST", .url = g->cfg->google_revoke_url,
				     .content_type = "application/x-www-form-urlencoded", .body = form, .oauth = true };

	google_send(g, &rq, cb, arg);
	xfree_secret(form);
}

void google_userinfo(struct google *g, const char *access_token, google_cb cb, void *arg)
{
	struct google_request rq = { .op = "oauth.userinfo", .method = "GET", .url = g->cfg->google_userinfo_url,
				     .access_token = access_token, .retry = true };

	google_send(g, &rq, cb, arg);
}

/* base/calendars/<cal>/events[/<id>][?query]; the caller frees it. */
static char *google_events_url(struct google *g, const char *calendar_id, const char *event_id, const char *query)
{
	char *cal = google_escape(calendar_id);
	char *id = event_id ? google_escape(event_id) : NULL;
	char *url = xasprintf("%s/calendars/%s/events%s%s%s%s", g->cfg->google_calendar_api_url, cal, id ? "/" : "",
			      id ? id : "", query && *query ? "?" : "", query && *query ? query : "");

	free(cal);
	free(id);
	return url;
}

void google_event_insert(struct google *g, const char *access_token, const char *calendar_id, const cJSON *event,
			 const char *query, google_cb cb, void *arg)
{
	char *url = google_events_url(g, calendar_id, NULL, query);
	struct google_request rq = { .op = "events.insert", .method = "POST", .url = url, .access_token = access_token,
				     .json = event, .retry = true };

	google_send(g, &rq, cb, arg);
	free(url);
}

void google_event_get(struct google *g, const char *access_token, const char *calendar_id, const char *event_id,
		      google_cb cb, void *arg)
{
	char *url = google_events_url(g, calendar_id, event_id, NULL);
	struct google_request rq = { .op = "events.get", .method = "GET", .url = url, .access_token = access_token,
				     .retry = true };

	google_send(g, &rq, cb, arg);
	free(url);
}

void google_event_patch(struct google *g, const char *access_token, const char *calendar_id, const char *event_id,
			const cJSON *patch, const char *query, google_cb cb, void *arg)
{
	char *url = google_events_url(g, calendar_id, event_id, query);
	struct google_request rq = { .op = "events.patch", .method = "PATCH", .url = url, .access_token = access_token,
				     .json = patch, .retry = true };

	google_send(g, &rq, cb, arg);
	free(url);
}

void google_event_delete(struct google *g, const char *access_token, const char *calendar_id, const char *event_id,
			 const char *query, google_cb cb, void *arg)
{
	char *url = google_events_url(g, calendar_id, event_id, query);
	struct google_request rq = { .op = "events.delete", .method = "DELETE", .url = url,
				     .access_token = access_token, .retry = true };

	google_send(g, &rq, cb, arg);
	free(url);
}

void google_calendar_probe(struct google *g, const char *access_token, const char *calendar_id, google_cb cb,
			   void *arg)
{
	char *url = google_events_url(g, calendar_id, NULL, "maxResults=1");
	struct google_request rq = { .op = "events.list", .method = "GET", .url = url, .access_token = access_token,
				     .retry = true };

	google_send(g, &rq, cb, arg);
	free(url);
}

void google_freebusy(struct google *g, const char *access_token, const char *calendar_id, int64_t from_s,
		     int64_t to_s, google_cb cb, void *arg)
{
	char *url = xasprintf("%s/freeBusy", g->cfg->google_calendar_api_url);
	char from[40], to[40];
	cJSON *req = cJSON_CreateObject();
	cJSON *item = cJSON_CreateObject();

	datetime_format(from_s, 0, from, sizeof(from));
	datetime_format(to_s, 0, to, sizeof(to));
	cJSON_AddStringToObject(req, "timeMin", from);
	cJSON_AddStringToObject(req, "timeMax", to);
	cJSON_AddStringToObject(req, "timeZone", "UTC");
	cJSON_AddStringToObject(item, "id", calendar_id);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "items"), item);
	struct google_request rq = { .op = "freebusy.query", .method = "POST", .url = url,
				     .access_token = access_token, .json = req, .retry = true };

	google_send(g, &rq, cb, arg);
	cJSON_Delete(req);
	free(url);
}

void google_events_watch(struct google *g, const char *access_token, const char *calendar_id, const char *id,
			 const char *address, const char *token, long ttl_s, google_cb cb, void *arg)
{
	char *url = google_events_url(g, calendar_id, "watch", NULL);
	cJSON *req = cJSON_CreateObject();
	cJSON *params;
	char ttl[24];

	/* events/watch, not an event called "watch": the id path segment is the endpoint's own. */
	snprintf(ttl, sizeof(ttl), "%ld", ttl_s);
	cJSON_AddStringToObject(req, "id", id);
	cJSON_AddStringToObject(req, "type", "web_hook");
	cJSON_AddStringToObject(req, "address", address);
	cJSON_AddStringToObject(req, "token", token);
	params = cJSON_AddObjectToObject(req, "params");
	cJSON_AddStringToObject(params, "ttl", ttl);
	struct google_request rq = { .op = "events.watch", .method = "POST", .url = url,
				     .access_token = access_token, .json = req };

	google_send(g, &rq, cb, arg);
	google_json_free(req);
	free(url);
}

void google_channel_stop(struct google *g, const char *access_token, const char *id, const char *resource_id,
			 google_cb cb, void *arg)
{
	char *url = xasprintf("%s/channels/stop", g->cfg->google_calendar_api_url);
	cJSON *req = cJSON_CreateObject();

	cJSON_AddStringToObject(req, "id", id);
	cJSON_AddStringToObject(req, "resourceId", resource_id);
	struct google_request rq = { .op = "channels.stop", .method = "POST", .url = url,
				     .access_token = access_token, .json = req, .retry = true };

	google_send(g, &rq, cb, arg);
	cJSON_Delete(req);
	free(url);
}

void google_events_list_sync(struct google *g, const char *access_token, const char *calendar_id,
			     const char *sync_token, const char *page_token, google_cb cb, void *arg)
{
	char *st = sync_token ? google_escape(sync_token) : NULL;
	char *pt = page_token ? google_escape(page_token) : NULL;
	char *query = xasprintf("maxResults=250&singleEvents=true&showDeleted=true%s%s%s%s", st ? "&syncToken=" : "",
				st ? st : "", pt ? "&pageToken=" : "", pt ? pt : "");
	char *url = google_events_url(g, calendar_id, NULL, query);
	struct google_request rq = { .op = "events.list", .method = "GET", .url = url, .access_token = access_token,
				     .retry = true };

	google_send(g, &rq, cb, arg);
	free(st);
	free(pt);
	free(query);
	free(url);
}
