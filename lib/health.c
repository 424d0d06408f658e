/*
 * health: liveness, readiness and metrics endpoints (see health.h).
 */
#include "health.h"

#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define HEALTH_MAX_CHECKS 8

struct health_ctx {
	health_ready_cb ready;
	void *arg;
};

struct health {
	struct evhttp *http;
	struct health_ctx ctx;
};

static void health_reply(struct evhttp_request *req, int code, const char *reason, const char *type,
			 const char *body)
{
	struct evbuffer *out = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	evbuffer_add(out, body, strlen(body));
	evhttp_send_reply(req, code, reason, out);
	evbuffer_free(out);
}

static void health_on_healthz(struct evhttp_request *req, void *arg)
{
	(void)arg;
	health_reply(req, 200, "OK", "application/json", "{\"status\":\"ok\"}\n");
}

static void health_on_readyz(struct evhttp_request *req, void *arg)
{
	struct health_ctx *ctx = arg;
	struct health_check checks[HEALTH_MAX_CHECKS];
	int n = ctx->ready ? ctx->ready(checks, HEALTH_MAX_CHECKS, ctx->arg) : 0;
	bool ok = true;
	cJSON *body = cJSON_CreateObject();
	cJSON *each = cJSON_AddObjectToObject(body, "checks");
	char *json, *text;

	for (int i = 0; i < n; i++) {
		cJSON_AddBoolToObject(each, checks[i].name, checks[i].ok);
		ok = ok && checks[i].ok;
	}
	cJSON_AddStringToObject(body, "status", ok ? "ready" : "not ready");
	json = cJSON_PrintUnformatted(body);
	text = xasprintf("%s\n", json);
	health_reply(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", "application/json", text);
	free(text);
	cJSON_free(json);
	cJSON_Delete(body);
}

static void health_on_metrics(struct evhttp_request *req, void *arg)
{
	char *text = metrics_render();

	(void)arg;
	health_reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text);
	free(text);
}

static void health_on_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	health_reply(req, 404, "Not Found", "application/json",
		     "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint\"}}\n");
}

static void health_install(struct evhttp *http, struct health_ctx *ctx)
{
	evhttp_set_cb(http, "/healthz", health_on_healthz, ctx);
	evhttp_set_cb(http, "/readyz", health_on_readyz, ctx);
	evhttp_set_cb(http, "/metrics", health_on_metrics, ctx);
}

struct health *health_new(struct event_base *base, const char *addr, health_ready_cb ready, void *arg)
{
	struct health *h;
	char *host;
	int port;

	if (cfg_split_addr(addr, &host, &port) < 0) {
		log_error("bad health address", LOG_STR("addr", addr));
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	h->ctx.ready = ready;
	h->ctx.arg = arg;
	h->http = evhttp_new(base);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_body_size(h->http, 1024);
	evhttp_set_timeout(h->http, 10);
	health_install(h->http, &h->ctx);
	evhttp_set_gencb(h->http, health_on_other, NULL);
	if (evhttp_bind_socket(h->http, host, (ev_uint16_t)port) != 0) {
		log_error("cannot listen for health and metrics", LOG_STR("addr", addr));
		free(host);
		health_free(h);
		return NULL;
	}
	log_info("health and metrics listening", LOG_STR("addr", addr));
	free(host);
	return h;
}

void health_free(struct health *h)
{
	if (h == NULL)
		return;
	if (h->http != NULL)
		evhttp_free(h->http);
	free(h);
}
