/*
 * retry: what a consumer does with a delivery it cannot finish now, or ever.
 *
 * Transient failures (Google 5xx/429, database down) go to a retry tier: a
 * queue whose fixed TTL dead-letters the message back to the work queue, so
 * the broker holds the wait and a restart loses nothing. Each tier is one
 * queue with one TTL, never per-message expirations, which RabbitMQ only
 * honours at the head of a queue. A small random pause before the publish
 * spreads retries of a burst (jitter). Past the last tier, or for a message
 * that can never succeed, the copy goes to the dead-letter queue with
 * x-dead-reason and x-dead-detail headers.
 *
 * In both cases the original is acked only after the broker confirmed the
 * copy. A copy the broker did not take is published again every second for
 * a minute (the publishing connection may be reconnecting); only then is the
 * original rejected back to its queue, so a message is never lost between
 * the two and never bounces through its consumer in a tight loop.
 */
#ifndef RETRY_H
#define RETRY_H

#include <stdbool.h>
#include <stddef.h>

#include "mq.h"

struct event_base;

struct retry_policy {
	const char *const *tiers;	/* queue names, shortest wait first */
	const long *ttl_ms;		/* each tier's wait */
	size_t ntiers;
	const char *dead_queue;
};

/*
 * Where a consumer's copies go and how it settles the originals: built once
 * per worker from its loop, connections and policy, and passed to every call.
 */
struct retry_ctx {
	struct event_base *base;
	struct mq *publisher;		/* publishes the copies */
	struct mq *consumer;		/* settles the originals */
	const struct retry_policy *policy;
};

/* settled: the original was acked; false: it went back to its queue for redelivery. */
typedef void (*retry_done_cb)(bool settled, void *arg);

/* How many times the message went through a tier already (header x-attempt). */
int retry_attempt(const struct mq_delivery *d);

/* True when no tier is left for this delivery. */
bool retry_exhausted(const struct retry_ctx *ctx, const struct mq_delivery *d);

/*
 * Send a copy (x-attempt + 1, everything else kept) through the next tier,
 * then settle the original. done (may be NULL) runs once, later. The
 * delivery is copied; the caller may free it at once.
 */
void retry_later(const struct retry_ctx *ctx, const struct mq_delivery *d, retry_done_cb done, void *arg);

/*
 * retry_later() for a delivery that can succeed once a lease held by another
 * copy runs out, in lease_left_ms: through the next tier, or an earlier one
 * when a shorter wait already reaches past the lease, so a copy that just
 * missed the lease does not wait a whole long tier more. x-attempt still
 * counts up. lease_left_ms <= 0 is retry_later().
 */
void retry_later_within(const struct retry_ctx *ctx, const struct mq_delivery *d, long lease_left_ms,
			retry_done_cb done, void *arg);

/*
 * Send a copy to the dead-letter queue with the reason (a short code) and a
 * sentence (x-dead-reason, x-dead-detail; x-dead-from: its routing key;
 * x-dead-publisher: the original's user-id, since the copy carries the
 * consumer's own), then settle.
 */
void retry_dead_letter(const struct retry_ctx *ctx, const struct mq_delivery *d, const char *reason,
		       const char *detail, retry_done_cb done, void *arg);

#endif
