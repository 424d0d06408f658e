/*
 * oauth-gateway: the HTTP face of the booking services.
 *
 * Connects a user's Google Calendar through OAuth and lets the platform's
 * frontend read and change meetings. It never calls Google Calendar itself
 * beyond reading the calendar's zone at connect time: writes go to the
 * scheduler as commands over RabbitMQ, on a connection that lives on its own
 * thread (mqbridge) so the HTTP loop never waits on the broker. With
 * WEB_UI it also serves a small reference UI over that same API (web.c).
 * This file wires the process: configuration, the route table, start and a
 * graceful stop (stop listening, let requests in flight finish, then free
 * everything in the order that lets each pending callback run once and
 * clean up).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>
#include <sodium.h>

#include "cfg.h"
#include "db.h"
#include "gateway.h"
#include "google.h"
#include "health.h"
#include "http.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "mqbridge.h"
#include "svc.h"
#include "topology.h"
#include "tz.h"
#include "vault.h"

/* DESIGN.md "Limits": JWT time checks allow 60 s of clock skew. */
#define GATEWAY_JWT_SKEW_S 60
/* Google calls in flight at once (token exchanges, userinfo, revokes). */
#define GATEWAY_GOOGLE_CONNECTIONS 64

static const struct http_route gateway_routes[] = {
	{ EVHTTP_REQ_GET, "/api/integrations/google/auth", HTTP_AUTH_BROWSER, oauth_auth },
	{ EVHTTP_REQ_GET, "/api/integrations/google/callback", HTTP_AUTH_NONE, oauth_callback },
	{ EVHTTP_REQ_POST, "/api/integrations/google/disconnect", HTTP_AUTH_BEARER, oauth_disconnect },
	{ EVHTTP_REQ_GET, "/api/integrations/google/status", HTTP_AUTH_BEARER, oauth_status },
	{ EVHTTP_REQ_GET, "/api/calendar/meetings", HTTP_AUTH_BEARER, meetings_list },
	{ EVHTTP_REQ_POST, "/api/calendar/meetings", HTTP_AUTH_BEARER, commands_create },
	{ EVHTTP_REQ_GET, "/api/calendar/meetings/lead/:leadAnalyticsId", HTTP_AUTH_BEARER, meetings_by_lead },
	{ EVHTTP_REQ_GET, "/api/calendar/meetings/:meetingId", HTTP_AUTH_BEARER, meetings_get },
	{ EVHTTP_REQ_DELETE, "/api/calendar/meetings/:meetingId", HTTP_AUTH_BEARER, commands_cancel },
	{ EVHTTP_REQ_PUT, "/api/calendar/meetings/:meetingId/reschedule", HTTP_AUTH_BEARER, commands_reschedule },
};

/* WEB_UI: the pages and their files, public like any login page; their data comes from the API. */
static const struct http_route gateway_web_routes[] = {
	{ EVHTTP_REQ_GET, "/", HTTP_AUTH_NONE, web_integrations },
	{ EVHTTP_REQ_GET, "/leads/:leadAnalyticsId", HTTP_AUTH_NONE, web_lead },
	{ EVHTTP_REQ_GET, "/static/:file", HTTP_AUTH_NONE, web_static },
};

/* WEB_UI_DEV_USER (the local stack): a session for that user to whoever asks. */
static const struct http_route gateway_dev_routes[] = {
	{ EVHTTP_REQ_GET, "/dev/sign-in", HTTP_AUTH_NONE, web_dev_sign_in },
};

#define GATEWAY_NROUTES(a) (sizeof(a) / sizeof(*(a)))

/*
 * The routes this configuration serves, into routes (room for every route). A route that is off is
 * absent, not refused: it answers 404 like any unknown path and gives away nothing.
 */
static size_t gateway_route_table(const struct config *cfg, struct http_route *routes)
{
	size_t n = 0;

	for (size_t i = 0; i < GATEWAY_NROUTES(gateway_routes); i++)
		routes[n++] = gateway_routes[i];
	for (size_t i = 0; cfg->web_ui && i < GATEWAY_NROUTES(gateway_web_routes); i++)
		routes[n++] = gateway_web_routes[i];
	/* cfg.c accepts WEB_UI_DEV_USER only beside WEB_UI=on; asking again costs nothing. */
	for (size_t i = 0; cfg->web_ui && cfg->web_ui_dev_user != NULL && i < GATEWAY_NROUTES(gateway_dev_routes); i++)
		routes[n++] = gateway_dev_routes[i];
	return n;
}

static int gateway_ready(struct health_check *checks, int max, void *arg)
{
	struct gateway *g = arg;

	if (max < 2)
		return 0;
	checks[0] = (struct health_check){ "database", db_ready(g->db) };
	checks[1] = (struct health_check){ "amqp", mqbridge_ready(g->mq) };
	return 2;
}

static void gateway_on_drained(void *arg)
{
	struct gateway *g = arg;
	/* A moment for the last answers to reach their sockets. */
	struct timeval flush = { 0, 100000 };

	event_base_loopexit(g->base, &flush);
}

static void gateway_on_stop(void *arg)
{
	struct gateway *g = arg;

	log_info("stopping");
	http_server_drain(g->http, gateway_on_drained, g);
}

static void gateway_init(struct gateway *g)
{
	struct db_opts dbo = { 0 };
	char *err = NULL;

	g->jwt = (struct jwt_policy){
		.secret = g->cfg.jwt_secret,
		.secret_len = strlen(g->cfg.jwt_secret),
		.user_claim = g->cfg.jwt_user_claim,
		.issuer = g->cfg.jwt_issuer,
		.audience = g->cfg.jwt_audience,
		.skew_s = GATEWAY_JWT_SKEW_S,
	};
	/* cfg_load() has checked the key ring already; this only fails when libsodium cannot start. */
	g->vault = vault_new(g->cfg.token_encryption_key, &err);
	if (g->vault == NULL) {
		log_error("cannot open the token vault", LOG_STR("problem", err));
		exit(1);
	}
	g->base = event_base_new();
	if (g->base == NULL) {
		log_error("cannot create the event loop");
		exit(1);
	}
	dbo.conninfo = g->cfg.database_url;
	dbo.application_name = "oauth-gateway";
	g->db = db_new(g->base, &dbo);
	g->httpc = httpc_new(g->base, GATEWAY_GOOGLE_CONNECTIONS);
	g->google = google_new(g->httpc, &g->cfg);
	g->commands = commands_new();
	g->mq = mqbridge_new(g->base, g->cfg.amqp_url, "oauth-gateway", topology_declare_gateway, commands_on_reply,
			     g->commands);
}

int main(void)
{
	static struct gateway g;
	static struct http_route routes[GATEWAY_NROUTES(gateway_routes) + GATEWAY_NROUTES(gateway_web_routes) +
					GATEWAY_NROUTES(gateway_dev_routes)];
	struct svc_signals *signals;
	size_t nroutes;
	int status = 0;

	log_init("oauth-gateway", LOG_INFO);
	cfg_load_or_exit(&g.cfg, CFG_DATABASE | CFG_AMQP | CFG_GOOGLE_OAUTH | CFG_VAULT | CFG_JWT | CFG_GATEWAY,
			 NULL);
	if (sodium_init() < 0) {
		log_error("libsodium failed to initialise");
		return 1;
	}
	gateway_init(&g);
	signals = svc_signals_new(g.base, gateway_on_stop, &g);
	nroutes = gateway_route_table(&g.cfg, routes);
	g.http = http_server_new(&g, routes, nroutes, gateway_ready, &g);
	if (g.http != NULL) {
		log_info("started", LOG_STR("listen", g.cfg.listen_addr), LOG_BOOL("web_ui", g.cfg.web_ui));
		if (g.cfg.web_ui_dev_user != NULL)
			log_warn("the development sign-in helper is on: anyone who reaches /dev/sign-in is signed in",
				 LOG_STR("user", g.cfg.web_ui_dev_user));
		event_base_dispatch(g.base);
	} else {
		status = 1;
	}

	/*
	 * Requests are answered first; then each source of callbacks is closed, and every context
	 * still waiting on one is called once more and frees itself. Replies and confirms from the
	 * bridge still name commands, so those go after the bridge.
	 */
	http_server_free(g.http);
	mqbridge_free(g.mq);
	commands_free(g.commands);
	httpc_free(g.httpc);
	google_free(g.google);
	db_free(g.db);
	vault_free(g.vault);
	svc_signals_free(signals);
	event_base_free(g.base);
	cfg_free(&g.cfg);
	tz_shutdown();
	metrics_shutdown();
	log_info("stopped");
	log_shutdown();
	return status;
}
