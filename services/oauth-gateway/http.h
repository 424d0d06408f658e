/*
 * http: the gateway's request plumbing on libevent's evhttp.
 *
 * Routes are patterns ("/api/calendar/meetings/:id/reschedule") with a
 * method and an authentication mode; a path that matches no pattern
 * answers 404, one that matches with another method 405 (with Allow), one
 * with an encoded NUL byte in a segment 400. Every answer, errors included,
 * is JSON ({"error": {"code", "message"}}) except the OAuth redirects and
 * the web UI's files.
 *
 * Anonymous clients get little: each connection passes through httpconn.c's
 * guard, which checks every request head before evhttp sees it, gives it a
 * deadline, and caps the connections. A request is routed and authenticated
 * from its head alone; a body declared over MAX_BODY_BYTES answers 413, and
 * only then, authenticated, is the body read (never, on a route that takes
 * none: HTTP_ROUTE_NO_BODY).
 *
 * With WEB_UI on, the API also takes the session cookie (JWT_COOKIE), for
 * the UI's pages, which cannot see the HttpOnly cookie to send it as a
 * header. A cookie is sent with whatever a browser requests, other sites'
 * forms and images included, so on the API it counts only on a request that
 * says it comes from a page's script: it must carry "X-Requested-With:
 * fetch", a header no form or image can send and that a script on another
 * origin may send only after a CORS preflight, which this server never
 * grants; and a browser's own Sec-Fetch-Site, when sent, must be
 * same-origin. The cookie itself is SameSite=Lax. This holds for reads as
 * well as writes, so the rule is one and simple.
 *
 * evhttp tells nobody when a client goes away while its reply is deferred,
 * and frees the request itself once it is answered, so a request here is
 * answered exactly once and never freed by us: struct http_req wraps it,
 * is reference counted, and once answered (by its handler, its deadline or
 * shutdown) every later reply is a no-op. Handlers that continue on the
 * loop take a reference and check http_req_done() when they resume.
 *
 * Each answer counts in http_requests_total{route,method,status} and
 * http_request_duration_seconds{route}, with the route's pattern as label,
 * never the raw path (which carries ids and, for the callback, secrets).
 */
#ifndef HTTP_H
#define HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "health.h"

struct gateway;
struct http_server;
struct http_req;

enum http_auth {
	HTTP_AUTH_NONE,		/* the OAuth callback (by its state), Google's pushes (by their token) */
	HTTP_AUTH_BEARER,	/* Authorization: Bearer <JWT>; with WEB_UI also the JWT cookie on the UI's own calls */
	HTTP_AUTH_BROWSER,	/* the bearer header, or for a plain navigation the JWT cookie */
};

typedef void (*http_handler)(struct gateway *g, struct http_req *r);

/* The path must match as written: no trailing slash forgiven (files, probes). */
#define HTTP_ROUTE_EXACT 1u
/*
 * The handler runs from the head alone and the body, if any, is never read
 * (the answer closes the connection): for a route whose callers send none
 * (Google's pushes), which refuses a body itself (http_req_body_length()).
 */
#define HTTP_ROUTE_NO_BODY 2u

struct http_route {
	unsigned methods;	/* EVHTTP_REQ_* bits */
	const char *pattern;	/* literal segments and ":name" parameters */
	enum http_auth auth;
	http_handler handler;
	unsigned flags;		/* HTTP_ROUTE_* */
};

/*
 * The route of routes for a request path (percent-decoded segment by
 * segment; one trailing slash is forgiven unless the route is
 * HTTP_ROUTE_EXACT) and method: its index, with its ":name" parameters in
 * params (fresh strings the caller frees); -1 when none fits, -2 when a
 * segment decodes to a NUL byte (the request is malformed). Either way
 * *allowed gathers the methods of every route whose pattern fits the path
 * (0: a 404, else a 405 with Allow) and *first is the first such route (-1 when none), whose
 * pattern labels the request's metrics.
 */
#define HTTP_MAX_PARAMS 2	/* room params needs */
int http_route_find(const struct http_route *routes, size_t nroutes, const char *path, unsigned method,
		    char **params, unsigned *allowed, int *first);

/*
 * A server for g's configuration serving routes on g->base, with /healthz
 * and /readyz (asking ready) beside them (/metrics is on METRICS_ADDR, not
 * here). NULL (logged) when LISTEN_ADDR cannot be bound. The caller frees it with
 * http_server_free().
 */
struct http_server *http_server_new(struct gateway *g, const struct http_route *routes, size_t nroutes,
				    health_ready_cb ready, void *ready_arg);

/*
 * Stop taking connections and requests, give those in flight a grace period
 * to finish, answer the rest 503, then call done (once, maybe at once).
 */
void http_server_drain(struct http_server *s, void (*done)(void *arg), void *arg);

/*
 * Answer whatever is still pending with 503 and close the server (before
 * the event base is freed). http_server_free(NULL) is a no-op.
 */
void http_server_free(struct http_server *s);

/* Request data; strings live as long as the request. */
const char *http_req_param(const struct http_req *r, size_t i);	/* i-th ":name" of the pattern */
const char *http_req_query(const struct http_req *r, const char *key);	/* decoded; NULL when absent */
const char *http_req_header(const struct http_req *r, const char *name);
unsigned http_req_method(const struct http_req *r);	/* EVHTTP_REQ_* */
/* The body's declared length (Content-Length) not read yet; 0 once read or when there is none. */
long long http_req_body_length(const struct http_req *r);
const char *http_req_user(const struct http_req *r);	/* the authenticated user's id (lower-case UUID) */
/* The value of cookie name, or NULL. The caller frees it. */
char *http_req_cookie(const struct http_req *r, const char *name);
/* The value of cookie name in one Cookie header's text (quotes taken off); NULL when absent. The caller frees it. */
char *http_cookie_find(const char *header, const char *name);

/* The i-th path parameter as a lower-case UUID (the caller frees it), or NULL after a 400 naming it. */
char *http_param_uuid(struct http_req *r, size_t i, const char *name);

/*
 * The body as a JSON object. With optional, an empty body reads as {}. NULL
 * after answering 400 (the caller just returns). The caller frees the
 * result with cJSON_Delete().
 */
cJSON *http_req_json(struct http_req *r, bool optional);

/* Keep r alive across callbacks; every ref is matched by one unref. */
void http_req_ref(struct http_req *r);
void http_req_unref(struct http_req *r);
/* r has been answered (or abandoned at shutdown): only unref it. */
bool http_req_done(const struct http_req *r);

/* Answers. Each finishes r; on a request already done they do nothing. */
void http_reply(struct http_req *r, int status, const char *json_text);
void http_reply_json(struct http_req *r, int status, const cJSON *body);
void http_reply_error(struct http_req *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/*
 * A file of the web UI: len bytes of body (NULL for none, as in a 304) as
 * type, with what a page served beside an API needs: a Content-Security-Policy
 * that allows only this origin's scripts and styles and no framing, no
 * sniffing, and revalidation on every use (the caller adds the ETag).
 */
void http_reply_page(struct http_req *r, int status, const char *type, const char *body, size_t len);
/* 302 to location, with no-store and no Referer leaking the URL onwards. */
void http_redirect(struct http_req *r, const char *location);
/* Extra response header for the answer still to come ("WWW-Authenticate", ...). */
void http_add_header(struct http_req *r, const char *name, const char *value);

#endif
