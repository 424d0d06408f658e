/*
 * worker: process scaffolding shared by the queue workers (see worker.h).
 */
#include "worker.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "db.h"
#include "health.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "svc.h"
#include "tz.h"
#include "xmalloc.h"

struct worker {
	struct worker_opts opts;
	struct config cfg;
	struct event_base *base;
	struct db *db;
	struct mq *consumer;
	struct mq *publisher;
	struct httpc *http;
	struct health *health;
	struct svc_signals *signals;
	struct event *drain;
	int64_t drain_deadline_ms;	/* monotonic */
	bool stopping;
	bool closing;
};

static int64_t worker_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int worker_ready(struct health_check *checks, int max, void *arg)
{
	struct worker *w = arg;

	if (max < 3)
		return 0;
	checks[0] = (struct health_check){ "database", db_ready(w->db) };
	checks[1] = (struct health_check){ "amqp_consumer", mq_ready(w->consumer) };
	checks[2] = (struct health_check){ "amqp_publisher", mq_ready(w->publisher) };
	return 3;
}

static void worker_on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	unsigned busy = w->opts.in_flight ? w->opts.in_flight(w->opts.arg) : 0;

	(void)fd;
	(void)what;
	if (busy > 0 && worker_now_ms() < w->drain_deadline_ms)
		return;
	if (busy > 0)
		log_warn("stopping with work in flight; the broker will redeliver it", LOG_INT("in_flight", busy));
	else
		log_info("work drained");
	event_del(w->drain);
	if (w->opts.on_stop)
		w->opts.on_stop(w->opts.arg);
	w->closing = true;
	event_base_loopexit(w->base, NULL);
}

void worker_stop(struct worker *w)
{
	struct timeval tick = { 0, 100000 };

	if (w->stopping)
		return;
	w->stopping = true;
	w->drain_deadline_ms = worker_now_ms() + w->cfg.drain_timeout_ms;
	mq_stop_consuming(w->consumer);
	w->drain = xevent_new(w->base, -1, EV_PERSIST, worker_on_drain, w);
	event_add(w->drain, &tick);
}

static void worker_on_signal(void *arg)
{
	worker_stop(arg);
}

struct worker *worker_new(const struct worker_opts *opts)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	struct db_opts dbo = { 0 };
	struct mq_opts mqo = { 0 };
	char *name;

	w->opts = *opts;
	log_init(opts->name, LOG_INFO);
	cfg_load_or_exit(&w->cfg, opts->cfg_groups | CFG_DATABASE | CFG_AMQP | CFG_WORKER,
			 opts->default_metrics_addr);

	w->base = svc_base_new();
	w->signals = svc_signals_new(w->base, worker_on_signal, w);

	dbo.conninfo = w->cfg.database_url;
	dbo.application_name = opts->name;
	dbo.pool_size = (int)(w->cfg.database_pool_size ? w->cfg.database_pool_size : opts->db_pool_size);
	w->db = db_new(w->base, &dbo);
	w->http = httpc_new(w->base, 0);

	name = xasprintf("%s consumer", opts->name);
	mqo.url = w->cfg.amqp_url;
	mqo.name = name;
	mqo.on_connect = opts->on_consumer_connect;
	mqo.arg = opts->arg;
	w->consumer = mq_new(w->base, &mqo);
	free(name);
	name = xasprintf("%s publisher", opts->name);
	mqo.name = name;
	mqo.on_connect = opts->on_publisher_connect;
	w->publisher = mq_new(w->base, &mqo);
	free(name);

	w->health = health_new(w->base, w->cfg.metrics_addr, worker_ready, w);
	if (w->health == NULL)
		exit(1);
	return w;
}

int worker_run(struct worker *w)
{
	log_info("started", LOG_STR("metrics_addr", w->cfg.metrics_addr));
	event_base_dispatch(w->base);
	log_info("stopped");
	return 0;
}

void worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	if (w->drain != NULL)
		event_free(w->drain);
	/* However the loop ended, callbacks from here on only release their jobs. */
	w->closing = true;
	health_free(w->health);
	/*
	 * The sources of callbacks, before the modules they call into (on_free).
	 * The pool first: a statement's callback may still send an HTTP
	 * request, which the client then ends as well. Publisher before the
	 * consumer: its LOST confirms may still settle deliveries on it.
	 */
	db_free(w->db);
	httpc_free(w->http);
	mq_free(w->publisher);
	mq_free(w->consumer);
	if (w->opts.on_free)
		w->opts.on_free(w->opts.arg);
	svc_signals_free(w->signals);
	event_base_free(w->base);
	cfg_free(&w->cfg);
	tz_shutdown();
	metrics_shutdown();
	log_shutdown();
	free(w);
}

bool worker_stopping(const struct worker *w)
{
	return w->stopping;
}

bool worker_closing(const struct worker *w)
{
	return w->closing;
}

const struct config *worker_config(const struct worker *w)
{
	return &w->cfg;
}

struct event_base *worker_base(struct worker *w)
{
	return w->base;
}

struct db *worker_db(struct worker *w)
{
	return w->db;
}

struct mq *worker_consumer(struct worker *w)
{
	return w->consumer;
}

struct mq *worker_publisher(struct worker *w)
{
	return w->publisher;
}

struct httpc *worker_http(struct worker *w)
{
	return w->http;
}

void worker_env_init(struct worker_env *env, struct worker *w, const struct retry_policy *policy)
{
	env->worker = w;
	env->cfg = worker_config(w);
	env->base = worker_base(w);
	env->db = worker_db(w);
	env->consumer = worker_consumer(w);
	env->publisher = worker_publisher(w);
	env->retry_policy = *policy;
	env->retry = (struct retry_ctx){ env->base, env->publisher, env->consumer, &env->retry_policy };
}
