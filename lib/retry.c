/*
 * retry: retry tiers and dead letters with confirm-then-ack (see retry.h).
 */
#include "retry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define RETRY_JITTER_MS 1000
#define RETRY_DETAIL_MAX 1000
/*
 * A copy the broker did not take is published again every second for this
 * long before the original goes back to its queue: sending it back at once
 * while only the publishing connection is down would bounce it through the
 * consumer again and again and burn its quorum delivery limit.
 */
#define RETRY_REPUBLISH_S 60

struct retry_job {
	struct mq *publisher;
	struct mq *consumer;
	struct mq_delivery *delivery;
	struct mq_header *headers;	/* the copy's headers: original ones plus ours */
	size_t nheaders;
	char *strings[4];		/* values of the headers we add */
	const char *queue;
	struct event_base *base;
	struct event *pause;
	int republishes;
	retry_done_cb done;
	void *arg;
};

int retry_attempt(const struct mq_delivery *d)
{
	const char *v = mq_delivery_header(d, "x-attempt");
	long n = v ? strtol(v, NULL, 10) : 0;

	return n > 0 && n < 1000 ? (int)n : 0;
}

bool retry_exhausted(const struct retry_ctx *ctx, const struct mq_delivery *d)
{
	return (size_t)retry_attempt(d) >= ctx->policy->ntiers;
}

static void retry_job_free(struct retry_job *job)
{
	for (size_t i = 0; i < sizeof(job->strings) / sizeof(*job->strings); i++)
		free(job->strings[i]);
	free(job->headers);
	if (job->pause != NULL)
		event_free(job->pause);
	mq_delivery_free(job->delivery);
	free(job);
}

static void retry_publish(struct retry_job *job);

static void retry_on_pause(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	retry_publish(arg);
}

/* Run the publish again after delay_ms, on the job's own timer. */
static void retry_publish_in(struct retry_job *job, long delay_ms)
{
	struct timeval tv = { delay_ms / 1000, (suseconds_t)(delay_ms % 1000) * 1000 };

	if (job->pause == NULL)
		job->pause = xevent_new(job->base, -1, 0, retry_on_pause, job);
	evtimer_add(job->pause, &tv);
}

static void retry_on_confirm(enum mq_confirm outcome, void *arg)
{
	struct retry_job *job = arg;
	bool settled = false;

	if (outcome == MQ_CONFIRM_ACK) {
		settled = mq_ack(job->consumer, job->delivery->token) == 0;
	} else if (outcome != MQ_CONFIRM_RETURNED && job->republishes++ < RETRY_REPUBLISH_S) {
		retry_publish_in(job, 1000);
		return;
	} else {
		log_warn("could not hand a message to its retry or dead-letter queue; returning it to its queue",
			 LOG_STR("queue", job->queue), LOG_STR("message_id", job->delivery->msg.message_id),
			 LOG_INT("confirm", outcome));
		mq_nack(job->consumer, job->delivery->token, true);
	}
	if (job->done != NULL)
		job->done(settled, job->arg);
	retry_job_free(job);
}

static void retry_publish(struct retry_job *job)
{
	struct mq_message m = job->delivery->msg;

	m.exchange = "";
	m.routing_key = job->queue;
	m.headers = job->headers;
	m.nheaders = job->nheaders;
	m.transient = false;
	m.mandatory = true;
	if (mq_publish(job->publisher, &m, retry_on_confirm, job) < 0)
		retry_on_confirm(MQ_CONFIRM_LOST, job);
}

/* A new job whose copy keeps every original header except those we set again. */
static struct retry_job *retry_job_new(const struct retry_ctx *ctx, const struct mq_delivery *d,
				       const char *const *replace, size_t nreplace)
{
	struct retry_job *job = xcalloc(1, sizeof(*job));

	job->base = ctx->base;
	job->publisher = ctx->publisher;
	job->consumer = ctx->consumer;
	job->delivery = mq_delivery_dup(d);
	job->headers = xcalloc(d->msg.nheaders + nreplace, sizeof(*job->headers));
	for (size_t i = 0; i < job->delivery->msg.nheaders; i++) {
		const struct mq_header *h = &job->delivery->msg.headers[i];
		bool replaced = strncmp(h->key, "x-death", 7) == 0 || strcmp(h->key, "x-delivery-count") == 0;

		for (size_t k = 0; k < nreplace && !replaced; k++)
			replaced = strcmp(h->key, replace[k]) == 0;
		if (!replaced)
			job->headers[job->nheaders++] = *h;
	}
	return job;
}

void retry_later(const struct retry_ctx *ctx, const struct mq_delivery *d, retry_done_cb done, void *arg)
{
	retry_later_within(ctx, d, 0, done, arg);
}

void retry_later_within(const struct retry_ctx *ctx, const struct mq_delivery *d, long lease_left_ms,
			retry_done_cb done, void *arg)
{
	static const char *const ours[] = { "x-attempt" };
	const struct retry_policy *policy = ctx->policy;
	struct retry_job *job = retry_job_new(ctx, d, ours, 1);
	int attempt = retry_attempt(d);
	size_t tier = (size_t)attempt < policy->ntiers ? (size_t)attempt : policy->ntiers - 1;

	if (lease_left_ms > 0)
		for (size_t t = 0; t < tier; t++)
			if (policy->ttl_ms[t] >= lease_left_ms) {
				tier = t;
				break;
			}
	job->strings[0] = xasprintf("%d", attempt + 1);
	job->headers[job->nheaders++] = (struct mq_header){ "x-attempt", job->strings[0] };
	job->queue = policy->tiers[tier];
	job->done = done;
	job->arg = arg;
	metric_inc(metrics_counter("retries_total", "Messages sent through a retry tier.", "queue", job->queue, NULL));
	retry_publish_in(job, (long)randombytes_uniform(RETRY_JITTER_MS));
}

void retry_dead_letter(const struct retry_ctx *ctx, const struct mq_delivery *d, const char *reason,
		       const char *detail, retry_done_cb done, void *arg)
{
	static const char *const ours[] = { "x-dead-reason", "x-dead-detail", "x-dead-from", "x-dead-publisher" };
	struct retry_job *job = retry_job_new(ctx, d, ours, 4);

	job->strings[0] = xstrdup(reason);
	job->strings[1] = xstrndup(detail ? detail : "", RETRY_DETAIL_MAX);
	/* A header is one line: keep a hostile detail from looking like two. */
	for (char *p = job->strings[1]; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	job->strings[2] = xstrdup(d->msg.routing_key ? d->msg.routing_key : "");
	job->headers[job->nheaders++] = (struct mq_header){ "x-dead-reason", job->strings[0] };
	job->headers[job->nheaders++] = (struct mq_header){ "x-dead-detail", job->strings[1] };
	job->headers[job->nheaders++] = (struct mq_header){ "x-dead-from", job->strings[2] };
	/* The copy names us as its user-id (lib/mq): keep who sent the original, RabbitMQ's word for it. */
	if (d->msg.user_id != NULL) {
		job->strings[3] = xstrdup(d->msg.user_id);
		job->headers[job->nheaders++] = (struct mq_header){ "x-dead-publisher", job->strings[3] };
	}
	job->queue = ctx->policy->dead_queue;
	job->done = done;
	job->arg = arg;
	log_warn("dead-lettering a message", LOG_STR("queue", job->queue), LOG_STR("reason", reason),
		 LOG_STR("detail", job->strings[1]), LOG_STR("message_id", d->msg.message_id));
	metric_inc(metrics_counter("dead_letters_total", "Messages sent to a dead-letter queue.", "queue", job->queue,
				   "reason", reason, NULL));
	retry_publish(job);
}
