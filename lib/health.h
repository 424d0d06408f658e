/*
 * health: /healthz, /readyz and /metrics over HTTP for orchestrators and
 * Prometheus.
 *
 * /healthz answers 200 while the event loop runs (a wedged loop cannot
 * answer, which is what a liveness probe wants to know). /readyz asks the
 * service whether its dependencies are reachable and answers 200 or 503 with
 * a JSON body naming what is missing. /metrics renders the metrics registry.
 * Every service serves them on its own small server on METRICS_ADDR; the
 * gateway answers /healthz and /readyz on its API listener too, but never
 * /metrics (services/oauth-gateway/http.c).
 */
#ifndef HEALTH_H
#define HEALTH_H

#include <stdbool.h>

struct event_base;
struct evhttp;
struct health;

/*
 * Fill checks with up to max named results and return how many; a service is
 * ready when every check is true.
 */
struct health_check {
	const char *name;
	bool ok;
};
typedef int (*health_ready_cb)(struct health_check *checks, int max, void *arg);

/*
 * Serve the three endpoints on addr ("127.0.0.1:9101"). NULL (logged) when
 * the address cannot be bound. The caller frees it with health_free().
 */
struct health *health_new(struct event_base *base, const char *addr, health_ready_cb ready, void *arg);
/* health_free(NULL) is a no-op. */
void health_free(struct health *health);

#endif
