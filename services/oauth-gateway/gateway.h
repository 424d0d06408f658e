/*
 * gateway: state shared by the oauth-gateway's modules.
 *
 * main.c wires the process and holds the route table; http.c is the
 * request plumbing (routing, JSON answers, limits, metrics); auth.c finds
 * the user behind a request's JWT (jwt.c checks the token itself); oauth.c
 * is the Google connect flow and the connection's status; meetings.c
 * answers the read endpoints from the database; commands.c turns writes
 * into RPC commands to the scheduler and waits for its reply. ids.c makes
 * and checks identifiers. web.c serves the reference web UI (WEB_UI) and
 * the local stack's sign-in helper. Every request is a chain of callbacks on the one
 * event loop; the broker lives on mqbridge's thread.
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <stdbool.h>

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
};

/*
 * auth.c: the user a request's JWT names (Authorization: Bearer, or with
 * allow_cookie the JWT_COOKIE cookie when no header is sent). 0 and *user
 * (a lower-case UUID the caller frees), or -1 and *why (static text).
 */
int auth_user(struct gateway *g, const struct http_req *r, bool allow_cookie, char **user, const char **why);

/* oauth.c */
void oauth_auth(struct gateway *g, struct http_req *r);
void oauth_callback(struct gateway *g, struct http_req *r);
void oauth_disconnect(struct gateway *g, struct http_req *r);
void oauth_status(struct gateway *g, struct http_req *r);

/* meetings.c */
void meetings_list(struct gateway *g, struct http_req *r);
void meetings_get(struct gateway *g, struct http_req *r);
void meetings_by_lead(struct gateway *g, struct http_req *r);

/* web.c: only routed when WEB_UI is on; web_dev_sign_in only when WEB_UI_DEV_USER is set too. */
void web_integrations(struct gateway *g, struct http_req *r);
void web_lead(struct gateway *g, struct http_req *r);
void web_static(struct gateway *g, struct http_req *r);
void web_dev_sign_in(struct gateway *g, struct http_req *r);

/* commands.c */
/* The commands waiting for replies. The caller frees it with commands_free(). */
struct commands *commands_new(void);
/* After mqbridge_free(): forget commands still waiting. commands_free(NULL) is a no-op. */
void commands_free(struct commands *c);
/* An RPC reply from the bridge, matched to its command by correlation id. */
void commands_on_reply(const struct mq_delivery *reply, void *arg);
void commands_create(struct gateway *g, struct http_req *r);
void commands_reschedule(struct gateway *g, struct http_req *r);
void commands_cancel(struct gateway *g, struct http_req *r);

#endif
