/*
 * oauth-gateway: the HTTP face of the booking services.
 *
 * Connects a user's Google Calendar through OAuth and lets the platform's
 * frontend read and change meetings. It never calls Google Calendar itself
 * beyond reading the calendar's zone at connect time: writes go to the
 * scheduler as commands over RabbitMQ, on a connection that lives on its own
 * thread (mqbridge) so the HTTP loop never waits on the broker. With
 * WEB_UI it also serves a small reference UI over that same API (web.c).
 * This file wires the process: configuration, start and a
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

/* JWT time checks allow 60 s of clock skew (proto/openapi.yaml, info). */
#define GATEWAY_JWT_SKEW_S 60
/*
 * Database connections unless DATABASE_POOL_SIZE says otherwise. The
 * gateway's statements are short reads that lib/db batches per connection
 * under load; on 2 cores two connections served more status requests at a
 * lower p99 than four (docs/benchmarks.md).
 */
#define GATEWAY_DB_CONNECTIONS 2
/* Google calls in flight at once (token exchanges, userinfo, revokes). */
#define GATEWAY_GOOGLE_CONNECTIONS 64
/*
 * /healthz, /readyz and /metrics for operators, away from the public listener,
 * unless METRICS_ADDR says otherwise: next to the workers' 9101 and 9102
 * (9100 is node_exporter's on many hosts).
 */
#define GATEWAY_METRICS_ADDR "127.0.0.1:9103"

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
		.max_lifetime_s = g->cfg.jwt_max_lifetime_s,
	};
	/* cfg_load() has checked the key ring already; this only fails when libsodium cannot start. */
	g->vault = vault_new(g->cfg.token_encryption_key, &err);
	if (g->vault == NULL) {
		log_error("cannot open the token vault", LOG_STR("problem", err));
		exit(1);
	}
	g->base = svc_base_new();
	dbo.conninfo = g->cfg.database_url;
	dbo.application_name = "oauth-gateway";
	dbo.pool_size = (int)(g->cfg.database_pool_size ? g->cfg.database_pool_size : GATEWAY_DB_CONNECTIONS);
	/* A request must not wait out the reconnect backoff: while the database is down it gets 503 at once. */
	dbo.fail_fast = true;
	g->db = db_new(g->base, &dbo);
	g->httpc = httpc_new(g->base, GATEWAY_GOOGLE_CONNECTIONS);
	g->google = google_new(g->httpc, &g->cfg);
	g->commands = commands_new();
	g->mq = mqbridge_new(g->base, g->cfg.amqp_url, "oauth-gateway", topology_declare_gateway, commands_on_reply,
			     commands_on_lost, g->commands);
}

int main(void)
{
	static struct gateway g;
	static struct http_route routes[GATEWAY_MAX_ROUTES];
	struct svc_signals *signals;
	struct health *health = NULL;
	size_t nroutes;
	int status = 0;

	log_init("oauth-gateway", LOG_INFO);
	cfg_load_or_exit(&g.cfg, CFG_DATABASE | CFG_AMQP | CFG_GOOGLE_OAUTH | CFG_VAULT | CFG_JWT | CFG_GATEWAY,
			 GATEWAY_METRICS_ADDR);
	if (sodium_init() < 0) {
		log_error("libsodium failed to initialise");
		return 1;
	}
	gateway_init(&g);
	signals = svc_signals_new(g.base, gateway_on_stop, &g);
	nroutes = gateway_route_table(&g.cfg, routes);
	g.http = http_server_new(&g, routes, nroutes, gateway_ready, &g);
	if (g.http != NULL)
		health = health_new(g.base, g.cfg.metrics_addr, gateway_ready, &g);
	if (g.http != NULL && health != NULL) {
		log_info("started", LOG_STR("listen", g.cfg.listen_addr), LOG_STR("metrics_addr", g.cfg.metrics_addr),
			 LOG_BOOL("web_ui", g.cfg.web_ui), LOG_INT("max_connections", g.cfg.http_max_connections));
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
	health_free(health);
	mqbridge_free(g.mq);
	commands_free(g.commands);
	auth_users_free(g.users);
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
