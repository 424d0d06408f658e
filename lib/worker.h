/*
 * worker: the process around a queue worker (scheduler, mailer).
 *
 * Both workers are the same shape: configuration from the environment, one
 * event loop, a PostgreSQL pool, one AMQP connection for consuming and one
 * for publishing (RabbitMQ throttles publishers by not reading from them, and
 * a consumer must not stall with them), an HTTP client, /healthz, /readyz and
 * /metrics on METRICS_ADDR, and a graceful stop: on SIGTERM the consumers
 * are cancelled, work in flight finishes (up to DRAIN_TIMEOUT_MS), and the
 * loop exits. This module owns all of that; a worker supplies its topology,
 * its consumers and a count of jobs in flight.
 *
 * Callbacks during shutdown, one rule for every worker: when the drain
 * times out, jobs are still waiting on the sources of callbacks (the HTTP
 * client, the database pool, the AMQP connections). worker_free() ends
 * those sources first (the pool, then the HTTP client, then the
 * publisher and the consumer), and each calls what it still holds once,
 * with a failure; only then does it call on_free, where the worker frees
 * its own modules. So a callback always finds the modules it calls into
 * (a token cache, a Google client) alive. worker_closing() is true from
 * the moment the loop is told to exit: a callback that sees it releases
 * its job and starts nothing (no statement, request, publish or ack); the
 * broker redelivers every delivery not acked.
 */
#ifndef WORKER_H
#define WORKER_H

#include <stdbool.h>

#include "cfg.h"
#include "mq.h"
#include "retry.h"

struct event_base;
struct db;
struct httpc;
struct worker;

struct worker_opts {
	const char *name;			/* service name, for logs and connection names */
	unsigned cfg_groups;			/* CFG_DATABASE and CFG_AMQP are always added */
	const char *default_metrics_addr;
	int db_pool_size;			/* 0 means 4 */
	/* Declare topology and start consumers on the consuming connection. */
	mq_connect_cb on_consumer_connect;
	/* Declare what the worker publishes to, on the publishing connection. */
	mq_connect_cb on_publisher_connect;
	/* Jobs still running; the stop waits for this to reach 0. */
	unsigned (*in_flight)(void *arg);
	/* Called once before the loop exits, to stop the worker's own timers (a sweep). */
	void (*on_stop)(void *arg);
	/* Called by worker_free() after every source of callbacks has ended: free the worker's modules. */
	void (*on_free)(void *arg);
	void *arg;
};

/*
 * Read the configuration (exiting with status 78 and a message naming each
 * bad variable) and set everything up. The caller frees it with
 * worker_free() after worker_run() returns.
 */
struct worker *worker_new(const struct worker_opts *opts);
/* Run the loop until stopped. Returns the process exit status. */
int worker_run(struct worker *w);
/* worker_free(NULL) is a no-op. */
void worker_free(struct worker *w);

/* Ask the worker to stop as SIGTERM does (tests, fatal conditions). */
void worker_stop(struct worker *w);
bool worker_stopping(const struct worker *w);
/* The loop is exiting or gone: a callback now only releases its job (see the rule above). */
bool worker_closing(const struct worker *w);

/*
 * What a worker's modules reach through their service's struct, the same in
 * every worker: the worker's parts and the retry context made of them. Each
 * service embeds it as `env` and fills it once with worker_env_init(), with
 * its retry policy (copied in).
 */
struct worker_env {
	struct worker *worker;
	const struct config *cfg;
	struct event_base *base;
	struct db *db;
	struct mq *consumer;
	struct mq *publisher;
	struct retry_policy retry_policy;
	struct retry_ctx retry;		/* base, publisher, consumer and retry_policy, for lib/retry */
};

void worker_env_init(struct worker_env *env, struct worker *w, const struct retry_policy *policy);

const struct config *worker_config(const struct worker *w);
struct event_base *worker_base(struct worker *w);
struct db *worker_db(struct worker *w);
struct mq *worker_consumer(struct worker *w);
struct mq *worker_publisher(struct worker *w);
struct httpc *worker_http(struct worker *w);

#endif
