/*
 * google: OAuth and Calendar calls with classified results (see google.h).
 */
#include "google.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cfg.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define GOOGLE_TIMEOUT_MS 20000

struct google {
	struct httpc *http;
	const struct config *cfg;
};

struct google_call {
	google_cb cb;
	void *arg;
	const char *op;
	bool oauth;	/* token/revoke endpoints answer OAuth errors, not Calendar errors */
};

static const char *const google_outcome_names[] = {
	"ok", "transient", "unauthorized", "invalid_grant", "not_found", "duplicate", "gone", "permanent",
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
	return g;
}

void google_free(struct google *g)
{
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
		return reason != NULL && strcmp(reason, "deleted") == 0 ? GOOGLE_GONE : GOOGLE_PERMANENT;
	default:
		return GOOGLE_PERMANENT;
	}
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

	call->cb(&res, call->arg);
	cJSON_Delete(res.json);
	free(call);
}

/* Send one request; if curl refuses it outright, the callback runs at once with a transient result. */
static void google_send(struct google *g, const char *op, bool oauth, const char *method, const char *url,
			const char *access_token, const char *content_type, const char *body, google_cb cb,
			void *arg)
{
	struct google_call *call = xcalloc(1, sizeof(*call));
	char *auth = access_token ? xasprintf("Authorization: Bearer %s", access_token) : NULL;
	char *ctype = content_type ? xasprintf("Content-Type: %s", content_type) : NULL;
	const char *headers[4] = { "Accept: application/json" };
	struct httpc_request req = { 0 };
	int n = 1;

	if (auth != NULL)
		headers[n++] = auth;
	if (ctype != NULL)
		headers[n++] = ctype;
	headers[n] = NULL;
	call->cb = cb;
	call->arg = arg;
	call->op = op;
	call->oauth = oauth;
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.timeout_ms = GOOGLE_TIMEOUT_MS;
	if (httpc_send(g->http, &req, google_on_response, call) < 0) {
		struct httpc_response failed = { .result = CURLE_FAILED_INIT, .error = "request refused by libcurl",
						  .body = "", .retry_after_s = -1 };

		log_error("cannot start a Google request", LOG_STR("op", op));
		google_on_response(&failed, call);
	}
	if (auth != NULL) {
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	free(ctype);
}

static char *google_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *copy = xstrdup(e);

	curl_free(e);
	return copy;
}

/* key=value&... with every value form-encoded; pairs end with a NULL key. */
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

		free(ev);
		free(out);
		out = next;
		key = va_arg(ap, const char *);
	}
	va_end(ap);
	return out;
}

static void google_form_free(char *form)
{
	if (form == NULL)
		return;
	memset(form, 0, strlen(form));
	free(form);
}

void google_exchange_code(struct google *g, const char *code, const char *code_verifier, google_cb cb, void *arg)
{
	char *form = google_form("grant_type", "authorization_code", "code", code, "code_verifier", code_verifier,
				 "redirect_uri", g->cfg->google_redirect_uri, "client_id", g->cfg->google_client_id,
				 "client_secret", g->cfg->google_client_secret, NULL);

	google_send(g, "oauth.token", true, "POST", g->cfg->google_token_url, NULL,
		    "application/x-www-form-urlencoded", form, cb, arg);
	google_form_free(form);
}

void google_refresh(struct google *g, const char *refresh_token, google_cb cb, void *arg)
{
	char *form = google_form("grant_type", "refresh_token", "refresh_token", refresh_token, "client_id",
				 g->cfg->google_client_id, "client_secret", g->cfg->google_client_secret, NULL);

	google_send(g, "oauth.refresh", true, "POST", g->cfg->google_token_url, NULL,
		    "application/x-www-form-urlencoded", form, cb, arg);
	google_form_free(form);
}

void google_revoke(struct google *g, const char *token, google_cb cb, void *arg)
{
	char *form = google_form("token", token, NULL);

	google_send(g, "oauth.revoke", true, "POST", g->cfg->google_revoke_url, NULL,
		    "application/x-www-form-urlencoded", form, cb, arg);
	google_form_free(form);
}

void google_userinfo(struct google *g, const char *access_token, google_cb cb, void *arg)
{
	google_send(g, "oauth.userinfo", false, "GET", g->cfg->google_userinfo_url, access_token, NULL, NULL, cb,
		    arg);
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
	char *body = cJSON_PrintUnformatted(event);

	google_send(g, "events.insert", false, "POST", url, access_token, "application/json", body, cb, arg);
	cJSON_free(body);
	free(url);
}

void google_event_get(struct google *g, const char *access_token, const char *calendar_id, const char *event_id,
		      google_cb cb, void *arg)
{
	char *url = google_events_url(g, calendar_id, event_id, NULL);

	google_send(g, "events.get", false, "GET", url, access_token, NULL, NULL, cb, arg);
	free(url);
}

void google_event_patch(struct google *g, const char *access_token, const char *calendar_id, const char *event_id,
			const cJSON *patch, const char *query, google_cb cb, void *arg)
{
	char *url = google_events_url(g, calendar_id, event_id, query);
	char *body = cJSON_PrintUnformatted(patch);

	google_send(g, "events.patch", false, "PATCH", url, access_token, "application/json", body, cb, arg);
	cJSON_free(body);
	free(url);
}

void google_event_delete(struct google *g, const char *access_token, const char *calendar_id, const char *event_id,
			 const char *query, google_cb cb, void *arg)
{
	char *url = google_events_url(g, calendar_id, event_id, query);

	google_send(g, "events.delete", false, "DELETE", url, access_token, NULL, NULL, cb, arg);
	free(url);
}

void google_calendar_probe(struct google *g, const char *access_token, const char *calendar_id, google_cb cb,
			   void *arg)
{
	char *url = google_events_url(g, calendar_id, NULL, "maxResults=1");

	google_send(g, "events.list", false, "GET", url, access_token, NULL, NULL, cb, arg);
	free(url);
}
