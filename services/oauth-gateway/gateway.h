/*
 * gateway: state shared by the oauth-gateway's modules.
 *
 * main.c wires the process; routes.c holds the route table; http.c is the
 * request plumbing (routing, JSON answers, limits, metrics), behind
 * httpconn.c's guard of every connection (request heads checked before
 * evhttp sees them, their deadline, the connection cap); auth.c finds
 * the user behind a request's JWT (jwt.c checks the token itself); oauth.c
 * is the Google connect flow and the connection's status; meetings.c
 * answers the read endpoints from the database; commands.c turns writes
 * into RPC commands to the scheduler and waits for its reply; lib/ids makes
 * and checks identifiers. webhook.c takes Google's push notifications
 * and hands them to the scheduler's sync. web.c serves the reference web
 * UI (WEB_UI) and the local stack's sign-in helper. Every request is a
 * chain of callbacks on the one event loop; the broker lives on mqbridge's
 * thread.
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "cfg.h"
#include "jwt.h"

struct event_base;
struct db;
struct mqbridge;
struct mq_delivery;
struct httpc;
struct google;
struct vault;
struct http_server;
struct http_req;
struct commands;
struct auth_users;

struct gateway {
	struct config cfg;
	struct jwt_policy jwt;
	struct event_base *base;
	struct db *db;
	struct mqbridge *mq;
	struct httpc *httpc;
	struct google *google;
	struct vault *vault;
	struct http_server *http;
	struct commands *commands;
	struct auth_users *users;	/* auth.c's users known to exist; made on first use */
};

/*
 * auth.c: the user a request's JWT names (Authorization: Bearer, or with
 * allow_cookie the JWT_COOKIE cookie when no header is sent). 0 and *user
 * (a lower-case UUID the caller frees), or -1 and *why (static text).
 */
int auth_user(struct gateway *g, const struct http_req *r, bool allow_cookie, char **user, const char **why);
/*
 * Is the authenticated user of r a row of users? done(r, known) is called,
 * at once when the answer is remembered, else after a read; when that read
 * fails r has been answered 503 and done is not called.
 */
typedef void (*auth_known_cb)(struct http_req *r, bool known);
void auth_known(struct gateway *g, struct http_req *r, auth_known_cb done);
/* Forget the users known to exist; NULL is a no-op. */
void auth_users_free(struct auth_users *u);

/* routes.c: the routes cfg turns on, into routes (room for GATEWAY_MAX_ROUTES); their number. */
#define GATEWAY_MAX_ROUTES 16
struct http_route;
size_t gateway_route_table(const struct config *cfg, struct http_route *routes);

/* oauth.c */
/*
 * Where the callback sends the browser: FRONTEND_URL (frontend_url) with
 * google=connected, or google=error&reason=<reason> for a reason made of
 * [a-z_] (anything else is reported as exchange_failed), before any
 * fragment. Nothing from the request reaches it but the choice of reason.
 * The caller frees it.
 */
char *oauth_result_url(const char *frontend_url, const char *reason);
/* Is word one of the space-separated scopes of list (Google's "scope" field)? */
bool oauth_has_scope(const char *list, const char *word);
void oauth_auth(struct gateway *g, struct http_req *r);
void oauth_callback(struct gateway *g, struct http_req *r);
void oauth_disconnect(struct gateway *g, struct http_req *r);
void oauth_status(struct gateway *g, struct http_req *r);

/* meetings.c */
void meetings_list(struct gateway *g, struct http_req *r);
void meetings_get(struct gateway *g, struct http_req *r);
void meetings_by_lead(struct gateway *g, struct http_req *r);

/* webhook.c: POST /webhooks/google/calendar, Google's push notifications (docs/sync.md). */
void webhook_google_calendar(struct gateway *g, struct http_req *r);

/* web.c: only routed when WEB_UI is on; web_dev_sign_in only when WEB_UI_DEV_USER is set too. */
void web_integrations(struct gateway *g, struct http_req *r);
void web_lead(struct gateway *g, struct http_req *r);
void web_static(struct gateway *g, struct http_req *r);
void web_dev_sign_in(struct gateway *g, struct http_req *r);
/*
 * With WEB_UI on, a 404 for a browser's page request (GET or HEAD outside
 * /api/, Accept naming text/html) as an HTML page: true when it was sent,
 * false when the caller answers the API's JSON 404.
 */
bool web_not_found(struct gateway *g, struct http_req *r, const char *path);

/* commands.c */
/* The commands waiting for replies. The caller frees it with commands_free(). */
struct commands *commands_new(void);
/* After mqbridge_free(): forget commands still waiting. commands_free(NULL) is a no-op. */
void commands_free(struct commands *c);
/* An RPC reply from the bridge, matched to its command by correlation id. */
void commands_on_reply(const struct mq_delivery *reply, void *arg);
/*
 * The bridge's connection (and its reply queue) is gone: answer at once every
 * confirmed command still waiting, as its deadline would (a write: 202
 * pending, the scheduler still runs it; availability: 503, a read is worth
 * nothing late). Unconfirmed ones get their LOST confirm (503).
 */
void commands_on_lost(void *arg);
enum command_kind {
	COMMAND_CREATE,
	COMMAND_RESCHEDULE,
	COMMAND_CANCEL,
	COMMAND_AVAILABILITY,	/* a read through the scheduler: the rep's busy and free time */
};
/* The members of a meetings write body, pointing into the body; NULL when absent. */
struct commands_input {
	const char *lead;	/* create: leadAnalyticsId */
	const char *email;	/* create: attendeeEmail */
	const char *name;	/* create: attendeeName */
	const char *when;	/* create: dateTime; reschedule: newDateTime */
	const char *reason;	/* cancel */
	bool allow_conflict;	/* create, reschedule: allowConflict, book over the rep's busy time */
};
/*
 * Check a write body for kind at unix time now, a meeting at most
 * horizon_days ahead: 0 and *in, or -1 and why (len bytes), the 400's
 * message naming the field. Pure: no request, no I/O.
 */
int commands_check_body(enum command_kind kind, const cJSON *body, int64_t now, long horizon_days,
			struct commands_input *in, char *why, size_t len);
void commands_create(struct gateway *g, struct http_req *r);
void commands_reschedule(struct gateway *g, struct http_req *r);
void commands_cancel(struct gateway *g, struct http_req *r);
/* GET /api/calendar/availability?from=&to=&duration_minutes= */
void commands_availability(struct gateway *g, struct http_req *r);

#endif
