/*
 * exchange: one HTTP request from arrival to its one reply, and the reply
 * bodies Google uses.
 *
 * Every handler ends in exactly one exchange_reply*() call, which records
 * the outcome in the journal and frees the exchange; so stats, the request
 * log and the error formats cannot drift apart between handlers. The two
 * error families are Google's: JSON API errors ({"error": {"code", "message",
 * "errors": [...], "status"}}) for userinfo and Calendar, and RFC 6749 bodies
 * ({"error", "error_description"}) for the token and revoke endpoints.
 */
#include "standin.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "log.h"
#include "xmalloc.h"

struct event_base *exchange_base;

#define JSON_TYPE "application/json; charset=UTF-8"

bool exchange_route(struct exchange *ex, const struct route *routes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(ex->path, routes[i].path) != 0 || (routes[i].methods & (int)ex->method) == 0)
			continue;
		ex->endpoint = routes[i].endpoint;
		ex->family = routes[i].family;
		ex->handler = routes[i].handler;
		return true;
	}
	return false;
}

void exchange_set_email(struct exchange *ex, const char *email)
{
	free(ex->email);
	ex->email = email != NULL ? xstrdup(email) : NULL;
}

char *exchange_body(struct exchange *ex, size_t *len)
{
	struct evbuffer *b = evhttp_request_get_input_buffer(ex->req);
	size_t n = evbuffer_get_length(b);
	char *out = xmalloc(n + 1);

	evbuffer_copyout(b, out, n);
	out[n] = '\0';
	*len = n;
	return out;
}

const char *exchange_header(struct exchange *ex, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(ex->req), name);
}

static const char *exchange_method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "OTHER";
	}
}

struct exchange *exchange_new(struct evhttp_request *req)
{
	struct exchange *ex = xcalloc(1, sizeof(*ex));
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = evhttp_uri_get_path(uri);
	const char *query = evhttp_uri_get_query(uri);

	ex->req = req;
	ex->method = evhttp_request_get_command(req);
	ex->method_name = exchange_method_name(ex->method);
	ex->path = xstrdup(path != NULL && *path != '\0' ? path : "/");
	ex->query = form_parse(query, query != NULL ? strlen(query) : 0);
	ex->endpoint = "unknown";
	ex->family = FAMILY_PAGE;
	ex->started_ms = util_now_ms();
	return ex;
}

/* The reply functions end here; NULL is a no-op. */
static void exchange_free(struct exchange *ex)
{
	if (ex == NULL)
		return;
	if (ex->timer != NULL)
		event_free(ex->timer);
	free(ex->path);
	form_free(ex->query);
	free(ex->seg[0]);
	free(ex->seg[1]);
	free(ex->email);
	free(ex);
}

void exchange_reply(struct exchange *ex, int status, const char *content_type, const char *body, size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(ex->req);
	struct evbuffer *buf = evbuffer_new();

	if (content_type != NULL)
		evhttp_add_header(h, "Content-Type", content_type);
	if (ex->family != FAMILY_PAGE && ex->family != FAMILY_ADMIN)
		evhttp_add_header(h, "Cache-Control", "no-cache, no-store, max-age=0, must-revalidate");
	if (body != NULL && len > 0)
		evbuffer_add(buf, body, len);
	if (ex->family != FAMILY_ADMIN)
		journal_record(ex, status);
	log_debug("request", LOG_STR("method", ex->method_name), LOG_STR("endpoint", ex->endpoint),
	          LOG_INT("status", status), LOG_INT("ms", util_now_ms() - ex->started_ms),
	          LOG_EMAIL("email", ex->email), LOG_BOOL("fault", ex->faulted));
	/* evhttp frees the request itself if the client went away meanwhile. */
	evhttp_send_reply(ex->req, status, NULL, buf);
	evbuffer_free(buf);
	exchange_free(ex);
}

void exchange_reply_json(struct exchange *ex, int status, cJSON *obj)
{
	char *s = cJSON_PrintUnformatted(obj);

	if (s == NULL)
		abort();
	cJSON_Delete(obj);
	/* The token endpoint writes its charset in lower case; clients see exactly that. */
	exchange_reply(ex, status, ex->family == FAMILY_OAUTH ? "application/json; charset=utf-8" : JSON_TYPE, s,
	               strlen(s));
	cJSON_free(s);
}

/* Google's canonical status names for the HTTP codes its APIs answer. */
static const char *exchange_status_name(int status, const char *reason)
{
	switch (status) {
	case 400:
		return "INVALID_ARGUMENT";
	case 401:
		return "UNAUTHENTICATED";
	case 403:
		return "PERMISSION_DENIED";
	case 404:
		return "NOT_FOUND";
	case 409:
		return reason != NULL && strcmp(reason, "duplicate") == 0 ? "ALREADY_EXISTS" : "ABORTED";
	case 410:
		return "NOT_FOUND";
	case 412:
		return "FAILED_PRECONDITION";
	case 413:
		return "INVALID_ARGUMENT";
	case 429:
		return "RESOURCE_EXHAUSTED";
	case 499:
		return "CANCELLED";
	case 500:
		return "INTERNAL";
	case 501:
		return "UNIMPLEMENTED";
	case 502:
		return "UNAVAILABLE";
	case 503:
		return "UNAVAILABLE";
	case 504:
		return "DEADLINE_EXCEEDED";
	default:
		return "UNKNOWN";
	}
}

void exchange_api_error(struct exchange *ex, const struct api_error *err)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *e = cJSON_AddObjectToObject(root, "error");
	cJSON *item = cJSON_CreateObject();

	cJSON_AddNumberToObject(e, "code", err->status);
	cJSON_AddStringToObject(e, "message", err->message);
	cJSON_AddStringToObject(item, "message", err->item_message != NULL ? err->item_message : err->message);
	cJSON_AddStringToObject(item, "domain", err->domain);
	cJSON_AddStringToObject(item, "reason", err->reason);
	if (err->location_type != NULL) {
		cJSON_AddStringToObject(item, "locationType", err->location_type);
		cJSON_AddStringToObject(item, "location", err->location);
	}
	cJSON_AddItemToArray(cJSON_AddArrayToObject(e, "errors"), item);
	cJSON_AddStringToObject(e, "status", exchange_status_name(err->status, err->reason));
	if (strcmp(err->reason, "insufficientPermissions") == 0) {
		cJSON *info = cJSON_CreateObject();

		cJSON_AddStringToObject(info, "@type", "type.googleapis.com/google.rpc.ErrorInfo");
		cJSON_AddStringToObject(info, "reason", "ACCESS_TOKEN_SCOPE_INSUFFICIENT");
		cJSON_AddStringToObject(info, "domain", "googleapis.com");
		cJSON_AddItemToArray(cJSON_AddArrayToObject(e, "details"), info);
	}
	if (err->status == 401)
		evhttp_add_header(evhttp_request_get_output_headers(ex->req), "WWW-Authenticate",
		                  "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"");
	exchange_reply_json(ex, err->status, root);
}

void exchange_oauth_error(struct exchange *ex, int status, const char *error, const char *description)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "error", error);
	cJSON_AddStringToObject(o, "error_description", description);
	exchange_reply_json(ex, status, o);
}

void exchange_html(struct exchange *ex, int status, const char *html)
{
	exchange_reply(ex, status, "text/html; charset=utf-8", html, strlen(html));
}

void exchange_redirect(struct exchange *ex, const char *location)
{
	evhttp_add_header(evhttp_request_get_output_headers(ex->req), "Location", location);
	exchange_reply(ex, 302, "text/html; charset=UTF-8", NULL, 0);
}

struct fault_reason {
	const char *reason;
	const char *domain;
	const char *message;
};

/* What Google says for the reasons a test may ask a fault rule for. */
static const struct fault_reason fault_reasons[] = {
    {"rateLimitExceeded", "usageLimits", "Rate Limit Exceeded"},
    {"userRateLimitExceeded", "usageLimits", "User Rate Limit Exceeded"},
    {"quotaExceeded", "usageLimits", "Calendar usage limits exceeded."},
    {"dailyLimitExceeded", "usageLimits", "Daily Limit Exceeded"},
    {"backendError", "global", "Backend Error"},
    {"internalError", "global", "Internal Error"},
    {"forbiddenForNonOrganizer", "calendar", "Shared properties can only be changed by the organizer of the event."},
    {"notFound", "global", "Not Found"},
    {"deleted", "global", "Resource has been deleted"},
    {"duplicate", "global", "The requested identifier already exists."},
    {"conflict", "global", "Conflict"},
    {"conditionNotMet", "global", "Precondition Failed"},
    {"authError", "global", "Invalid Credentials"},
    {"badRequest", "global", "Bad Request"},
};

/* The body a bare status gets when no reason is named. */
static struct api_error exchange_default_error(int status)
{
	struct api_error e = {.status = status, .domain = "global", .reason = "unknown", .message = "Unknown Error"};

	switch (status) {
	case 400:
		e.reason = "badRequest";
		e.message = "Bad Request";
		break;
	case 401:
		e.reason = "authError";
		e.message = "Invalid Credentials";
		e.location_type = "header";
		e.location = "Authorization";
		break;
	case 403:
	case 429:
		e.domain = "usageLimits";
		e.reason = "rateLimitExceeded";
		e.message = "Rate Limit Exceeded";
		break;
	case 404:
		e.reason = "notFound";
		e.message = "Not Found";
		break;
	case 409:
		e.reason = "conflict";
		e.message = "Conflict";
		break;
	case 410:
		e.reason = "deleted";
		e.message = "Resource has been deleted";
		break;
	case 412:
		e.reason = "conditionNotMet";
		e.message = "Precondition Failed";
		e.location_type = "header";
		e.location = "If-Match";
		break;
	case 500:
		e.reason = "backendError";
		e.message = "Backend Error";
		break;
	case 502:
		e.reason = "backendError";
		e.message = "Bad Gateway";
		break;
	case 503:
		e.reason = "backendError";
		e.message = "The service is currently unavailable.";
		break;
	case 504:
		e.reason = "backendError";
		e.message = "Deadline Exceeded";
		break;
	default:
		break;
	}
	return e;
}

static void exchange_oauth_fault(struct exchange *ex, int status, const char *reason)
{
	const char *error = "server_error", *desc = "Server Error";

	switch (status) {
	case 400:
		error = "invalid_request";
		desc = "Bad Request";
		break;
	case 401:
		error = "invalid_client";
		desc = "Unauthorized";
		break;
	case 403:
		error = "access_denied";
		desc = "Forbidden";
		break;
	case 429:
		error = "rate_limit_exceeded";
		desc = "Rate Limit Exceeded";
		break;
	case 500:
		error = "internal_failure";
		desc = "Backend Error";
		break;
	case 503:
		error = "temporarily_unavailable";
		desc = "The service is currently unavailable.";
		break;
	default:
		break;
	}
	exchange_oauth_error(ex, status, reason != NULL ? reason : error, desc);
}

void exchange_fault(struct exchange *ex, int status, const char *reason)
{
	struct api_error e;

	ex->faulted = true;
	if (ex->family == FAMILY_OAUTH) {
		exchange_oauth_fault(ex, status, reason);
		return;
	}
	e = exchange_default_error(status);
	if (reason != NULL) {
		size_t i;

		for (i = 0; i < sizeof(fault_reasons) / sizeof(*fault_reasons); i++) {
			if (strcmp(fault_reasons[i].reason, reason) == 0)
				break;
		}
		if (i < sizeof(fault_reasons) / sizeof(*fault_reasons)) {
			e.domain = fault_reasons[i].domain;
			e.message = fault_reasons[i].message;
			e.reason = fault_reasons[i].reason;
		} else {
			/* A reason this table does not know keeps the status's wording. */
			e.domain = "global";
			e.reason = reason;
		}
		if (strcmp(e.reason, "authError") != 0)
			e.location_type = e.location = NULL;
		e.item_message = NULL;
	}
	exchange_api_error(ex, &e);
}
