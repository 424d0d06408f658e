/*
 * http: routing, JSON answers, body limits, deadlines and metrics for the
 * gateway's evhttp server (see http.h).
 */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gateway.h"
#include "httpconn.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define HTTP_MAX_SEGMENTS 8
/* A backstop: every chain has tighter deadlines of its own; none should reach this. */
#define HTTP_DEADLINE_S 30
/* How long a stopping gateway lets requests in flight finish. */
#define HTTP_DRAIN_S 5
/* Retry-After of every 503, in seconds (see http_reply_error()). */
#define HTTP_RETRY_AFTER_S "1"
/*
 * How long evhttp keeps a connection with nothing to read or write: a
 * kept-alive connection between requests. A request head has its own,
 * shorter deadline (HTTP_HEADER_TIMEOUT, httpconn.c).
 */
#define HTTP_IDLE_S 30
/* Descriptors beside the HTTP connections: database, broker, Google, metrics, logs. */
#define HTTP_OTHER_FDS 128
#define HTTP_ALL_METHODS                                                                                        \
	(EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |              \
	 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)

struct http_req {
	struct http_server *s;
	struct evhttp_request *req;	/* NULL once answered */
	struct http_req *prev, *next;	/* the server's pending list, while req is set */
	struct event *deadline;
	const struct http_route *route;
	const char *label;		/* the route's pattern for metrics, also when the method did not fit */
	enum evhttp_cmd_type method;
	struct http_conn *conn;		/* the connection's guard, while the request holds it */
	long long unread;		/* bytes of the body not read (yet) */
	bool expect_continue;		/* the client waits for 100 Continue before it sends the body */
	struct evkeyvalq query;
	char *params[HTTP_MAX_PARAMS];
	char *user;
	struct timespec start;
	int refs;
};

struct http_server {
	struct gateway *g;
	struct evhttp *http;
	struct evhttp_bound_socket *listener;
	struct http_conns *conns;
	struct http_route *routes;	/* the caller's and /healthz, /readyz */
	size_t nroutes;
	health_ready_cb ready;
	void *ready_arg;
	struct http_req *pending;
	bool draining;
	struct event *drain_timer;
	void (*drained)(void *arg);
	void *drained_arg;
};

static const struct {
	enum evhttp_cmd_type type;
	const char *name;
} http_methods[] = {
	{ EVHTTP_REQ_GET, "GET" },	   { EVHTTP_REQ_POST, "POST" },	      { EVHTTP_REQ_HEAD, "HEAD" },
	{ EVHTTP_REQ_PUT, "PUT" },	   { EVHTTP_REQ_DELETE, "DELETE" },   { EVHTTP_REQ_OPTIONS, "OPTIONS" },
	{ EVHTTP_REQ_TRACE, "TRACE" },	   { EVHTTP_REQ_CONNECT, "CONNECT" }, { EVHTTP_REQ_PATCH, "PATCH" },
};

static const char *http_method_name(enum evhttp_cmd_type type)
{
	for (size_t i = 0; i < sizeof(http_methods) / sizeof(*http_methods); i++) {
		if (http_methods[i].type == type)
			return http_methods[i].name;
	}
	return "OTHER";
}

static double http_elapsed(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void http_maybe_drained(struct http_server *s)
{
	void (*done)(void *arg) = s->drained;

	if (!s->draining || s->pending != NULL || done == NULL)
		return;
	s->drained = NULL;
	if (s->drain_timer != NULL)
		event_del(s->drain_timer);
	done(s->drained_arg);
}

void http_req_ref(struct http_req *r)
{
	r->refs++;
}

/* The OAuth callback's query holds the authorization code and the state: zero it before it is freed. */
static void http_query_wipe(struct evkeyvalq *query)
{
	struct evkeyval *kv;

	TAILQ_FOREACH(kv, query, next) {
		xwipe(kv->key, strlen(kv->key));
		xwipe(kv->value, strlen(kv->value));
	}
}

void http_req_unref(struct http_req *r)
{
	if (r == NULL || --r->refs > 0)
		return;
	http_query_wipe(&r->query);
	evhttp_clear_headers(&r->query);
	for (size_t i = 0; i < HTTP_MAX_PARAMS; i++)
		free(r->params[i]);
	free(r->user);
	free(r);
}

bool http_req_done(const struct http_req *r)
{
	return r->req == NULL;
}

/* Send status and body (may be NULL), count it, and drop the server's reference. */
static void http_finish(struct http_req *r, int status, struct evbuffer *body)
{
	struct http_server *s = r->s;
	const char *route = r->label ? r->label : "unmatched";
	const char *method = http_method_name(r->method);
	double seconds = http_elapsed(&r->start);
	struct http_conn *conn = r->conn;
	char code[8];

	if (r->req == NULL)
		return;
	/* A body left unread ends the connection: what follows it is no request. */
	if (r->unread > 0)
		evhttp_add_header(evhttp_request_get_output_headers(r->req), "Connection", "close");
	r->conn = NULL;
	evhttp_send_reply(r->req, status, NULL, body);
	r->req = NULL;
	http_conn_done(conn, r->unread > 0);
	event_free(r->deadline);
	r->deadline = NULL;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		s->pending = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;

	snprintf(code, sizeof(code), "%d", status);
	metric_inc(metrics_counter("http_requests_total", "HTTP requests answered, by route, method and status.",
				   "route", route, "method", method, "status", code, NULL));
	metric_observe(metrics_histogram("http_request_duration_seconds", "Time to answer an HTTP request, by route.",
					 metrics_latency_buckets, metrics_latency_nbuckets, "route", route, NULL),
		       seconds);
	log_debug("request answered", LOG_STR("method", method), LOG_STR("route", route), LOG_INT("status", status),
		  LOG_DOUBLE("ms", seconds * 1000));
	http_req_unref(r);
	http_maybe_drained(s);
}

void http_add_header(struct http_req *r, const char *name, const char *value)
{
	if (r->req != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

void http_reply(struct http_req *r, int status, const char *json_text)
{
	struct evbuffer *body;

	if (r->req == NULL)
		return;
	body = evbuffer_new();
	http_add_header(r, "Content-Type", "application/json");
	http_add_header(r, "Cache-Control", "no-store");
	http_add_header(r, "X-Content-Type-Options", "nosniff");
	evbuffer_add(body, json_text, strlen(json_text));
	evbuffer_add(body, "\n", 1);
	http_finish(r, status, body);
	evbuffer_free(body);
}

void http_reply_json(struct http_req *r, int status, const cJSON *json)
{
	char *text = cJSON_PrintUnformatted(json);

	if (text == NULL)
		abort();
	http_reply(r, status, text);
	cJSON_free(text);
}

void http_reply_error(struct http_req *r, int status, const char *code, const char *fmt, ...)
{
	cJSON *body = cJSON_CreateObject();
	cJSON *err = cJSON_AddObjectToObject(body, "error");
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	cJSON_AddStringToObject(err, "code", code);
	cJSON_AddStringToObject(err, "message", msg);
	/*
	 * Every 503 is "not now" (database down, broker down, shutting down): say
	 * when to ask again, so a client backs off instead of spinning. A 503
	 * costs the gateway next to nothing (the pool answers at once while the
	 * database is down), so a short pause keeps clients close to recovery.
	 */
	if (status == 503)
		http_add_header(r, "Retry-After", HTTP_RETRY_AFTER_S);
	http_reply_json(r, status, body);
	free(msg);
	cJSON_Delete(body);
}

void http_reply_page(struct http_req *r, int status, const char *type, const char *body, size_t len)
{
	struct evbuffer *buf;

	if (r->req == NULL)
		return;
	buf = evbuffer_new();
	http_add_header(r, "Content-Type", type);
	http_add_header(r, "Cache-Control", "no-cache");
	http_add_header(r, "Content-Security-Policy",
			"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
			" form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'");
	http_add_header(r, "X-Content-Type-Options", "nosniff");
	http_add_header(r, "X-Frame-Options", "DENY");
	http_add_header(r, "Referrer-Policy", "same-origin");
	if (body != NULL)
		evbuffer_add(buf, body, len);
	http_finish(r, status, buf);
	evbuffer_free(buf);
}

void http_redirect(struct http_req *r, const char *location)
{
	http_add_header(r, "Location", location);
	http_add_header(r, "Cache-Control", "no-store");
	/* The callback's URL carries the code and state; nothing downstream needs to see it. */
	http_add_header(r, "Referrer-Policy", "no-referrer");
	http_finish(r, 302, NULL);
}

const char *http_req_param(const struct http_req *r, size_t i)
{
	return i < HTTP_MAX_PARAMS ? r->params[i] : NULL;
}

const char *http_req_query(const struct http_req *r, const char *key)
{
	return evhttp_find_header(&r->query, key);
}

const char *http_req_header(const struct http_req *r, const char *name)
{
	return r->req ? evhttp_find_header(evhttp_request_get_input_headers(r->req), name) : NULL;
}

unsigned http_req_method(const struct http_req *r)
{
	return r->method;
}

long long http_req_body_length(const struct http_req *r)
{
	return r->unread;
}

const char *http_req_user(const struct http_req *r)
{
	return r->user;
}

char *http_cookie_find(const char *header, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = header;

	while (*p != '\0') {
		size_t len;

		p += strspn(p, " \t;");
		len = strcspn(p, ";");
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			const char *v = p + nlen + 1;
			size_t vlen = len - nlen - 1;

			while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
				v++;
				vlen -= 2;
			}
			return xstrndup(v, vlen);
		}
		p += len;
	}
	return NULL;
}

char *http_req_cookie(const struct http_req *r, const char *name)
{
	const struct evkeyval *h;

	if (r->req == NULL)
		return NULL;
	/* Every Cookie header counts: proxies that speak HTTP/2 may split them. */
	TAILQ_FOREACH(h, evhttp_request_get_input_headers(r->req), next) {
		char *v;

		if (strcasecmp(h->key, "Cookie") == 0 && (v = http_cookie_find(h->value, name)) != NULL)
			return v;
	}
	return NULL;
}

char *http_param_uuid(struct http_req *r, size_t i, const char *name)
{
	const char *v = http_req_param(r, i);
	char *id;

	if (!ids_is_uuid(v)) {
		http_reply_error(r, 400, "invalid_request", "%s must be a UUID", name);
		return NULL;
	}
	id = xstrdup(v);
	ids_lower(id);
	return id;
}

cJSON *http_req_json(struct http_req *r, bool optional)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	const char *text;
	cJSON *json;

	if (len == 0) {
		if (optional)
			return cJSON_CreateObject();
		http_reply_error(r, 400, "invalid_request", "the request needs a JSON body");
		return NULL;
	}
	text = (const char *)evbuffer_pullup(in, -1);
	json = cJSON_ParseWithLength(text, len);
	if (json == NULL) {
		http_reply_error(r, 400, "invalid_request", "the request body is not valid JSON");
		return NULL;
	}
	if (!cJSON_IsObject(json)) {
		cJSON_Delete(json);
		http_reply_error(r, 400, "invalid_request", "the request body must be a JSON object");
		return NULL;
	}
	return json;
}

static void http_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct http_req *r = arg;

	(void)fd;
	(void)what;
	if (r->unread > 0) {
		log_info("request refused: its body did not arrive in time", LOG_STR("route", r->label));
		http_reply_error(r, 408, "timeout", "the request body did not arrive in time");
		return;
	}
	log_warn("request timed out", LOG_STR("route", r->label));
	http_reply_error(r, 504, "timeout", "the request took too long; try again");
}

/*
 * Split a path into percent-decoded segments (fresh strings in segs). The
 * number of segments; -1 when there are too many to match any route, -2
 * when a segment decodes to a NUL byte (which would end it early). *slash
 * tells whether one trailing slash was forgiven.
 */
static int http_split(const char *path, char **segs, bool *slash)
{
	int n = 0;
	int why = -1;
	size_t len;

	*slash = false;
	while (*path == '/')
		path++;
	while (*path != '\0') {
		char *raw;
		size_t dlen = 0;

		len = strcspn(path, "/");
		if (n == HTTP_MAX_SEGMENTS)
			goto fail;
		raw = xstrndup(path, len);
		segs[n] = evhttp_uridecode(raw, 0, &dlen);
		free(raw);
		if (segs[n] == NULL)
			abort();
		if (strlen(segs[n]) != dlen) {
			free(segs[n]);
			why = -2;
			goto fail;
		}
		n++;
		path += len;
		/* One trailing slash is forgiven; an empty segment inside is not a route. */
		if (*path == '/') {
			path++;
			*slash = *path == '\0';
		}
	}
	return n;
fail:
	for (int i = 0; i < n; i++)
		free(segs[i]);
	return why;
}

/* Does the pattern match the segments? Parameters' segment indexes go to params, their count to *np. */
static bool http_match(const char *pattern, char **segs, int nsegs, int *params, int *np)
{
	int i = 0;
	const char *p = pattern;

	while (*p == '/')
		p++;
	while (*p != '\0') {
		size_t len = strcspn(p, "/");

		if (i == nsegs)
			return false;
		if (p[0] == ':') {
			if (*np == HTTP_MAX_PARAMS || segs[i][0] == '\0')
				return false;
			params[(*np)++] = i;
		} else if (strlen(segs[i]) != len || strncmp(segs[i], p, len) != 0) {
			return false;
		}
		i++;
		p += len;
		if (*p == '/')
			p++;
	}
	return i == nsegs;
}

int http_route_find(const struct http_route *routes, size_t nroutes, const char *path, unsigned method,
		    char **params, unsigned *allowed, int *first)
{
	char *segs[HTTP_MAX_SEGMENTS];
	bool slash;
	int nsegs = http_split(path, segs, &slash);
	int found = nsegs == -2 ? -2 : -1;
	int idx[HTTP_MAX_PARAMS];

	*allowed = 0;
	*first = -1;
	for (size_t i = 0; i < nroutes && nsegs >= 0; i++) {
		int np = 0;

		if ((slash && (routes[i].flags & HTTP_ROUTE_EXACT)) ||
		    !http_match(routes[i].pattern, segs, nsegs, idx, &np))
			continue;
		*allowed |= routes[i].methods;
		if (*first < 0)
			*first = (int)i;
		if ((routes[i].methods & method) == 0)
			continue;
		found = (int)i;
		for (int k = 0; k < np; k++)
			params[k] = xstrdup(segs[idx[k]]);
		break;
	}
	for (int i = 0; i < nsegs; i++)
		free(segs[i]);
	return found;
}

/* Find the route for r; on failure the 400, 404 or 405 has been sent and -1 comes back. */
static int http_route(struct http_server *s, struct http_req *r, const char *path)
{
	unsigned method = r->method == EVHTTP_REQ_HEAD ? EVHTTP_REQ_GET : r->method;
	unsigned allowed;
	int first;
	int i = http_route_find(s->routes, s->nroutes, path, method, r->params, &allowed, &first);

	if (first >= 0)
		r->label = s->routes[first].pattern;
	if (i >= 0) {
		r->route = &s->routes[i];
		r->label = r->route->pattern;
		return 0;
	}
	if (i == -2) {
		http_reply_error(r, 400, "invalid_request", "the path holds an encoded NUL byte");
		return -1;
	}
	if (allowed == 0) {
		if (!web_not_found(s->g, r, path))
			http_reply_error(r, 404, "not_found", "no such endpoint");
		return -1;
	}
	{
		char allow[96] = "";

		if (allowed & EVHTTP_REQ_GET)
			allowed |= EVHTTP_REQ_HEAD;
		for (size_t k = 0; k < sizeof(http_methods) / sizeof(*http_methods); k++) {
			if (allowed & http_methods[k].type) {
				strcat(allow, allow[0] ? ", " : "");
				strcat(allow, http_methods[k].name);
			}
		}
		http_add_header(r, "Allow", allow);
		http_reply_error(r, 405, "method_not_allowed", "%s is not allowed here; use %s",
				 http_method_name(r->method), allow);
	}
	return -1;
}

/* Is r one of the web UI's own API calls (see http.h)? Otherwise *why says what it lacks. */
static bool http_from_ui(const struct http_req *r, const char **why)
{
	const char *xrw = http_req_header(r, "X-Requested-With");
	const char *site = http_req_header(r, "Sec-Fetch-Site");

	if (xrw == NULL || strcasecmp(xrw, "fetch") != 0) {
		*why = "a bearer token is required (the session cookie counts only with X-Requested-With: fetch)";
		return false;
	}
	if (site != NULL && strcmp(site, "same-origin") != 0) {
		*why = "the session cookie counts only on requests from this site's own pages";
		return false;
	}
	return true;
}

static int http_authenticate(struct http_server *s, struct http_req *r)
{
	bool cookie = r->route->auth == HTTP_AUTH_BROWSER;
	const char *csrf = NULL;
	const char *why;
	bool sent;	/* a credential came with the request, whether or not it counted */

	if (r->route->auth == HTTP_AUTH_NONE)
		return 0;
	if (r->route->auth == HTTP_AUTH_BEARER && s->g->cfg.web_ui)
		cookie = http_from_ui(r, &csrf);
	if (auth_user(s->g, r, cookie, &r->user, &why) == 0)
		return 0;
	sent = http_req_header(r, "Authorization") != NULL;
	if (!sent && cookie) {
		char *c = http_req_cookie(r, s->g->cfg.jwt_cookie);

		sent = c != NULL;
		xfree_secret(c);
	}
	/* A cookie that was there but did not count: say why, or the refusal reads as "not signed in". */
	if (csrf != NULL && http_req_header(r, "Authorization") == NULL) {
		char *c = http_req_cookie(r, s->g->cfg.jwt_cookie);

		if (c != NULL)
			why = csrf;
		xfree_secret(c);
	}
	log_info("request refused: not authenticated", LOG_STR("route", r->route->pattern), LOG_STR("why", why));
	/* RFC 6750 section 3.1: a request without any token gets the challenge without an error code. */
	http_add_header(r, "WWW-Authenticate",
			sent ? "Bearer realm=\"calendar\", error=\"invalid_token\"" : "Bearer realm=\"calendar\"");
	http_reply_error(r, 401, "unauthorized", "%s", why);
	return -1;
}

/* Wrap req; the server holds the first reference until the request is answered. */
static struct http_req *http_req_new(struct http_server *s, struct evhttp_request *req)
{
	struct http_req *r = xcalloc(1, sizeof(*r));

	r->s = s;
	r->req = req;
	r->refs = 1;
	r->method = evhttp_request_get_command(req);
	TAILQ_INIT(&r->query);
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	r->next = s->pending;
	if (s->pending != NULL)
		s->pending->prev = r;
	s->pending = r;
	r->deadline = xevent_new(s->g->base, -1, 0, http_on_deadline, r);
	event_add(r->deadline, &(struct timeval){ HTTP_DEADLINE_S, 0 });
	return r;
}

/* The body has arrived (complete), or the client went away first. */
static void http_on_body(void *arg, bool complete)
{
	struct http_req *r = arg;

	if (complete) {
		r->unread = 0;
		if (!http_req_done(r))
			r->route->handler(r->s->g, r);
	} else {
		/* Nobody reads this answer; it is counted and frees evhttp's request. */
		http_reply_error(r, 408, "timeout", "the client left before its request body arrived");
	}
	http_req_unref(r);
}

/* Authenticated: read the body, if any, then run the handler. */
static void http_proceed(struct http_req *r)
{
	if (r->unread > 0 && r->conn != NULL && !(r->route->flags & HTTP_ROUTE_NO_BODY)) {
		http_req_ref(r);
		http_conn_read_body(r->conn, evhttp_request_get_input_buffer(r->req), (size_t)r->unread,
				    r->expect_continue, http_on_body, r);
		return;
	}
	r->route->handler(r->s->g, r);
}

/* One rule for a valid token whose user is not in users, whatever the route: 401, as for any bad token. */
static void http_on_known(struct http_req *r, bool known)
{
	if (known) {
		http_proceed(r);
		return;
	}
	log_info("request refused: unknown user", LOG_STR("route", r->route->pattern), LOG_STR("user", r->user));
	http_add_header(r, "WWW-Authenticate", "Bearer realm=\"calendar\", error=\"invalid_token\"");
	http_reply_error(r, 401, "unauthorized", "the token's user does not exist here; sign in again");
}

static void http_on_request(struct evhttp_request *req, void *arg)
{
	struct http_server *s = arg;
	struct http_req *r = http_req_new(s, req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct http_head head;

	http_conn_take(s->conns, req, &head, &r->conn);
	if (head.status != 0) {
		/* The guard refused the request before evhttp saw it; evhttp was shown a made-up one. */
		r->method = head.method;
		http_reply_error(r, head.status, head.code, "%s", head.message);
		return;
	}
	r->unread = head.content_length > 0 ? head.content_length : 0;
	if (s->draining) {
		http_reply_error(r, 503, "unavailable", "the gateway is shutting down; try again");
		return;
	}
	if (path == NULL) {
		http_reply_error(r, 400, "invalid_request", "the request target is malformed");
		return;
	}
	if (http_route(s, r, path) < 0)
		return;
	if (query != NULL && evhttp_parse_query_str(query, &r->query) < 0) {
		http_reply_error(r, 400, "invalid_request", "the query string is malformed");
		return;
	}
	/* Decided from Content-Length, before any of the body is read; a route that reads none refuses its own. */
	if (r->unread > s->g->cfg.max_body_bytes && !(r->route->flags & HTTP_ROUTE_NO_BODY)) {
		http_reply_error(r, 413, "payload_too_large", "the request body is larger than %ld bytes",
				 s->g->cfg.max_body_bytes);
		return;
	}
	/* So is the user: an anonymous client never gets to send a body, nor does a user who does not exist. */
	if (http_authenticate(s, r) < 0)
		return;
	r->expect_continue = head.expect_continue;
	if (r->route->auth == HTTP_AUTH_NONE)
		http_proceed(r);
	else
		auth_known(s->g, r, http_on_known);
}

static void http_on_healthz(struct gateway *g, struct http_req *r)
{
	(void)g;
	http_reply(r, 200, "{\"status\":\"ok\"}");
}

static void http_on_readyz(struct gateway *g, struct http_req *r)
{
	struct health_check checks[8];
	int n = r->s->ready ? r->s->ready(checks, 8, r->s->ready_arg) : 0;
	cJSON *body = cJSON_CreateObject();
	cJSON *c = cJSON_AddObjectToObject(body, "checks");
	bool ok = true;

	(void)g;
	for (int i = 0; i < n; i++) {
		cJSON_AddBoolToObject(c, checks[i].name, checks[i].ok);
		ok = ok && checks[i].ok;
	}
	cJSON_AddStringToObject(body, "status", ok ? "ready" : "not ready");
	http_reply_json(r, ok ? 200 : 503, body);
	cJSON_Delete(body);
}

/* Each server answers these beside its routes; /metrics is on METRICS_ADDR only. */
static const struct http_route http_probe_routes[] = {
	{ EVHTTP_REQ_GET, "/healthz", HTTP_AUTH_NONE, http_on_healthz, HTTP_ROUTE_EXACT },
	{ EVHTTP_REQ_GET, "/readyz", HTTP_AUTH_NONE, http_on_readyz, HTTP_ROUTE_EXACT },
};

/*
 * Every HTTP connection is a descriptor: make room for HTTP_MAX_CONNECTIONS
 * of them beside the rest, as far as the hard limit allows.
 */
static void http_raise_fd_limit(long max_connections)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_connections + HTTP_OTHER_FDS;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < want)
		log_warn("the descriptor limit is lower than HTTP_MAX_CONNECTIONS needs",
			 LOG_INT("limit", (long)rl.rlim_cur), LOG_INT("needed", (long)want));
}

struct http_server *http_server_new(struct gateway *g, const struct http_route *routes, size_t nroutes,
				    health_ready_cb ready, void *ready_arg)
{
	struct http_server *s = xcalloc(1, sizeof(*s));
	size_t nprobes = sizeof(http_probe_routes) / sizeof(*http_probe_routes);
	char *host;
	int port;

	s->g = g;
	s->routes = xcalloc(nroutes + nprobes, sizeof(*s->routes));
	memcpy(s->routes, routes, nroutes * sizeof(*routes));
	memcpy(s->routes + nroutes, http_probe_routes, sizeof(http_probe_routes));
	s->nroutes = nroutes + nprobes;
	s->ready = ready;
	s->ready_arg = ready_arg;
	s->http = evhttp_new(g->base);
	http_raise_fd_limit(g->cfg.http_max_connections);
	s->conns = http_conns_new(g->base, g->cfg.http_max_connections, g->cfg.http_header_timeout_s);
	evhttp_set_bevcb(s->http, http_conns_bevcb, s->conns);
	/* Every method reaches the router, so a wrong one gets a JSON 405 rather than evhttp's 501 page. */
	evhttp_set_allowed_methods(s->http, HTTP_ALL_METHODS);
	/*
	 * Backstops only: the guard checks every head before evhttp sees it and
	 * takes Content-Length away, so evhttp never reads a body itself.
	 */
	evhttp_set_max_body_size(s->http, g->cfg.max_body_bytes);
	evhttp_set_max_headers_size(s->http, 2 * HTTP_HEAD_MAX_BYTES + 1024);
	evhttp_set_timeout(s->http, HTTP_IDLE_S);
	evhttp_set_gencb(s->http, http_on_request, s);
	if (cfg_split_addr(g->cfg.listen_addr, &host, &port) < 0) {
		log_error("cannot listen", LOG_STR("addr", g->cfg.listen_addr), LOG_STR("why", "not host:port"));
		http_server_free(s);
		return NULL;
	}
	s->listener = evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)port);
	free(host);
	if (s->listener == NULL) {
		log_error("cannot listen", LOG_STR("addr", g->cfg.listen_addr), LOG_STR("why", "bind failed"));
		http_server_free(s);
		return NULL;
	}
	/*
	 * evhttp leaves Nagle's algorithm on. An answer larger than one segment
	 * then waits for the client's delayed ACK of the first (40 ms on Linux):
	 * the meetings list took 44 ms at the median under wrk instead of about
	 * one. Accepted sockets inherit the option from the listener on Linux,
	 * so it is set once here rather than per request.
	 */
	{
		int on = 1;

		setsockopt(evhttp_bound_socket_get_fd(s->listener), IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	}
	return s;
}

/* The grace period is over: whatever is still pending is answered now. */
static void http_fail_pending(struct http_server *s)
{
	while (s->pending != NULL)
		http_reply_error(s->pending, 503, "unavailable", "the gateway is shutting down; try again");
}

static void http_on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *s = arg;

	(void)fd;
	(void)what;
	log_warn("requests still in flight at shutdown are refused");
	http_fail_pending(s);
}

void http_server_drain(struct http_server *s, void (*done)(void *arg), void *arg)
{
	if (s->draining)
		return;
	s->draining = true;
	s->drained = done;
	s->drained_arg = arg;
	if (s->listener != NULL) {
		evhttp_del_accept_socket(s->http, s->listener);
		s->listener = NULL;
	}
	s->drain_timer = xevent_new(s->g->base, -1, 0, http_on_drain_timeout, s);
	event_add(s->drain_timer, &(struct timeval){ HTTP_DRAIN_S, 0 });
	http_maybe_drained(s);
}

void http_server_free(struct http_server *s)
{
	if (s == NULL)
		return;
	/* After a forced stop requests may still wait; evhttp_free() below frees them. */
	s->draining = true;
	s->drained = NULL;
	http_fail_pending(s);
	http_conns_free(s->conns);
	if (s->http != NULL)
		evhttp_free(s->http);
	if (s->drain_timer != NULL)
		event_free(s->drain_timer);
	free(s->routes);
	free(s);
}
