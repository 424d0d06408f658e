/*
 * mqbridge: a private AMQP thread with queue + eventfd hand-off (see mqbridge.h).
 */
#include "mqbridge.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "xmalloc.h"

enum mqbridge_item_kind {
	MQBRIDGE_PUBLISH,	/* loop -> thread */
	MQBRIDGE_STOP,		/* loop -> thread */
	MQBRIDGE_CONFIRM,	/* thread -> loop */
	MQBRIDGE_REPLY,		/* thread -> loop */
	MQBRIDGE_LOST,		/* thread -> loop: the reply queue went with its connection */
};

/* A message whose strings the item owns, so it can cross threads. */
struct mqbridge_msg {
	struct mq_message msg;
	struct mq_header *headers;
	char *strings[8];
};

struct mqbridge_item {
	struct mqbridge_item *next;
	enum mqbridge_item_kind kind;
	struct mqbridge_msg *publish;
	bool rpc;
	mq_confirm_cb confirm;
	void *arg;
	enum mq_confirm outcome;
	struct mq_delivery *reply;
	struct mqbridge *bridge;
};

struct mqbridge_queue {
	pthread_mutex_t lock;
	struct mqbridge_item *head, **tail;
	int fd;			/* eventfd the consuming side watches */
};

struct mqbridge {
	struct event_base *base;	/* the caller's loop */
	struct event *from_thread;
	struct mqbridge_queue to_thread, to_loop;

	pthread_t thread;
	struct event_base *tbase;	/* everything below belongs to the thread */
	struct event *to_thread_ev;
	struct event *ready_tick;
	struct mq *mq;
	char *reply_queue;
	mqbridge_declare_cb declare;
	char *url, *name;

	mqbridge_reply_cb reply;
	mqbridge_lost_cb lost;
	void *reply_arg;
	atomic_bool ready;
};

static void mqbridge_queue_init(struct mqbridge_queue *q)
{
	pthread_mutex_init(&q->lock, NULL);
	q->head = NULL;
	q->tail = &q->head;
	q->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->fd < 0) {
		log_error("eventfd failed");
		abort();
	}
}

static void mqbridge_queue_push(struct mqbridge_queue *q, struct mqbridge_item *it)
{
	uint64_t one = 1;

	it->next = NULL;
	pthread_mutex_lock(&q->lock);
	*q->tail = it;
	q->tail = &it->next;
	pthread_mutex_unlock(&q->lock);
	/* A full counter (impossible in practice) still leaves the reader awake. */
	if (write(q->fd, &one, sizeof(one)) < 0)
		return;
}

/* Take the whole queue at once; the caller walks and frees the list. */
static struct mqbridge_item *mqbridge_queue_take(struct mqbridge_queue *q)
{
	struct mqbridge_item *all;
	uint64_t n;

	if (read(q->fd, &n, sizeof(n)) < 0)
		n = 0;
	pthread_mutex_lock(&q->lock);
	all = q->head;
	q->head = NULL;
	q->tail = &q->head;
	pthread_mutex_unlock(&q->lock);
	return all;
}

static char *mqbridge_dup(struct mqbridge_msg *m, int slot, const char *s)
{
	m->strings[slot] = s ? xstrdup(s) : NULL;
	return m->strings[slot];
}

static struct mqbridge_msg *mqbridge_msg_copy(const struct mq_message *src)
{
	struct mqbridge_msg *m = xcalloc(1, sizeof(*m));

	m->msg = *src;
	m->msg.exchange = mqbridge_dup(m, 0, src->exchange);
	m->msg.routing_key = mqbridge_dup(m, 1, src->routing_key);
	m->msg.content_type = mqbridge_dup(m, 2, src->content_type);
	m->msg.message_id = mqbridge_dup(m, 3, src->message_id);
	m->msg.correlation_id = mqbridge_dup(m, 4, src->correlation_id);
	m->msg.reply_to = mqbridge_dup(m, 5, src->reply_to);
	m->msg.type = mqbridge_dup(m, 6, src->type);
	m->msg.user_id = mqbridge_dup(m, 7, src->user_id);
	m->msg.body = src->body_len ? xmemdup(src->body, src->body_len) : NULL;
	if (src->nheaders > 0) {
		m->headers = xcalloc(src->nheaders, sizeof(*m->headers));
		for (size_t i = 0; i < src->nheaders; i++) {
			m->headers[i].key = xstrdup(src->headers[i].key);
			m->headers[i].value = xstrdup(src->headers[i].value);
		}
	}
	m->msg.headers = m->headers;
	return m;
}

static void mqbridge_msg_free(struct mqbridge_msg *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < sizeof(m->strings) / sizeof(*m->strings); i++)
		free(m->strings[i]);
	for (size_t i = 0; i < m->msg.nheaders; i++) {
		free((char *)m->headers[i].key);
		free((char *)m->headers[i].value);
	}
	free(m->headers);
	free((void *)m->msg.body);
	free(m);
}

/* Thread side. */

static void mqbridge_on_thread_confirm(enum mq_confirm outcome, void *arg)
{
	struct mqbridge_item *it = arg;

	it->kind = MQBRIDGE_CONFIRM;
	it->outcome = outcome;
	mqbridge_queue_push(&it->bridge->to_loop, it);
}

static void mqbridge_on_thread_reply(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	struct mqbridge *b = arg;
	struct mqbridge_item *it = xcalloc(1, sizeof(*it));

	(void)mq;
	it->kind = MQBRIDGE_REPLY;
	it->reply = mq_delivery_dup(d);
	it->bridge = b;
	mqbridge_queue_push(&b->to_loop, it);
}

static int mqbridge_on_connect(struct mq *mq, void *arg)
{
	struct mqbridge *b = arg;
	const char *queue;

	if (b->declare(mq) < 0 || mq_declare_reply_queue(mq, &queue) < 0)
		return -1;
	free(b->reply_queue);
	b->reply_queue = xstrdup(queue);
	if (mq_consume(mq, queue, 256, true, mqbridge_on_thread_reply, b) < 0)
		return -1;
	atomic_store(&b->ready, true);
	return 0;
}

/*
 * The connection that owned the reply queue is gone: publishes fail at once
 * until the next connection is ready, and the loop hears that replies to
 * what was confirmed will not come (queued behind every reply received).
 */
static void mqbridge_on_disconnect(struct mq *mq, void *arg)
{
	struct mqbridge *b = arg;
	struct mqbridge_item *it = xcalloc(1, sizeof(*it));

	(void)mq;
	atomic_store(&b->ready, false);
	free(b->reply_queue);
	b->reply_queue = NULL;
	it->kind = MQBRIDGE_LOST;
	it->bridge = b;
	mqbridge_queue_push(&b->to_loop, it);
}

static void mqbridge_thread_publish(struct mqbridge *b, struct mqbridge_item *it)
{
	struct mqbridge_msg *m = it->publish;

	it->publish = NULL;
	if (it->rpc) {
		if (b->reply_queue == NULL || !mq_ready(b->mq)) {
			mqbridge_msg_free(m);
			mqbridge_on_thread_confirm(MQ_CONFIRM_LOST, it);
			return;
		}
		free(m->strings[5]);
		m->msg.reply_to = mqbridge_dup(m, 5, b->reply_queue);
	}
	if (mq_publish(b->mq, &m->msg, mqbridge_on_thread_confirm, it) < 0)
		mqbridge_on_thread_confirm(MQ_CONFIRM_LOST, it);
	mqbridge_msg_free(m);
}

static void mqbridge_on_requests(evutil_socket_t fd, short what, void *arg)
{
	struct mqbridge *b = arg;
	struct mqbridge_item *it = mqbridge_queue_take(&b->to_thread), *next;

	(void)fd;
	(void)what;
	for (; it != NULL; it = next) {
		next = it->next;
		if (it->kind == MQBRIDGE_STOP) {
			free(it);
			event_base_loopexit(b->tbase, NULL);
			continue;
		}
		mqbridge_thread_publish(b, it);
	}
}

static void mqbridge_on_ready_tick(evutil_socket_t fd, short what, void *arg)
{
	struct mqbridge *b = arg;

	(void)fd;
	(void)what;
	atomic_store(&b->ready, mq_ready(b->mq));
}

static void *mqbridge_thread(void *arg)
{
	struct mqbridge *b = arg;
	struct mq_opts opts = { .url = b->url,
				.name = b->name,
				.on_connect = mqbridge_on_connect,
				.on_disconnect = mqbridge_on_disconnect,
				.arg = b };
	struct timeval tick = { 0, 100000 };

	b->mq = mq_new(b->tbase, &opts);
	b->to_thread_ev = xevent_new(b->tbase, b->to_thread.fd, EV_READ | EV_PERSIST, mqbridge_on_requests, b);
	event_add(b->to_thread_ev, NULL);
	b->ready_tick = xevent_new(b->tbase, -1, EV_PERSIST, mqbridge_on_ready_tick, b);
	event_add(b->ready_tick, &tick);

	event_base_dispatch(b->tbase);

	atomic_store(&b->ready, false);
	mq_free(b->mq);
	b->mq = NULL;
	event_free(b->to_thread_ev);
	event_free(b->ready_tick);
	return NULL;
}

/* Loop side. */

static void mqbridge_deliver_to_loop(struct mqbridge *b, struct mqbridge_item *it)
{
	if (it->kind == MQBRIDGE_CONFIRM) {
		if (it->confirm != NULL)
			it->confirm(it->outcome, it->arg);
	} else if (it->kind == MQBRIDGE_REPLY) {
		if (b->reply != NULL)
			b->reply(it->reply, b->reply_arg);
		mq_delivery_free(it->reply);
	} else if (it->kind == MQBRIDGE_LOST) {
		if (b->lost != NULL)
			b->lost(b->reply_arg);
	}
	free(it);
}

static void mqbridge_on_results(evutil_socket_t fd, short what, void *arg)
{
	struct mqbridge *b = arg;
	struct mqbridge_item *it = mqbridge_queue_take(&b->to_loop), *next;

	(void)fd;
	(void)what;
	for (; it != NULL; it = next) {
		next = it->next;
		mqbridge_deliver_to_loop(b, it);
	}
}

struct mqbridge *mqbridge_new(struct event_base *base, const char *url, const char *name,
			      mqbridge_declare_cb declare, mqbridge_reply_cb reply, mqbridge_lost_cb lost,
			      void *reply_arg)
{
	struct mqbridge *b = xcalloc(1, sizeof(*b));

	b->base = base;
	b->url = xstrdup(url);
	b->name = xstrdup(name);
	b->declare = declare;
	b->reply = reply;
	b->lost = lost;
	b->reply_arg = reply_arg;
	atomic_init(&b->ready, false);
	mqbridge_queue_init(&b->to_thread);
	mqbridge_queue_init(&b->to_loop);
	b->from_thread = xevent_new(base, b->to_loop.fd, EV_READ | EV_PERSIST, mqbridge_on_results, b);
	event_add(b->from_thread, NULL);
	b->tbase = event_base_new();
	if (b->tbase == NULL || pthread_create(&b->thread, NULL, mqbridge_thread, b) != 0) {
		log_error("cannot start the AMQP thread");
		abort();
	}
	return b;
}

bool mqbridge_ready(const struct mqbridge *b)
{
	return atomic_load(&((struct mqbridge *)b)->ready);
}

int mqbridge_publish(struct mqbridge *b, const struct mq_message *msg, bool rpc, mq_confirm_cb confirm, void *arg)
{
	struct mqbridge_item *it;

	if (!mqbridge_ready(b))
		return -1;
	it = xcalloc(1, sizeof(*it));
	it->kind = MQBRIDGE_PUBLISH;
	it->publish = mqbridge_msg_copy(msg);
	it->rpc = rpc;
	it->confirm = confirm;
	it->arg = arg;
	it->bridge = b;
	mqbridge_queue_push(&b->to_thread, it);
	return 0;
}

void mqbridge_free(struct mqbridge *b)
{
	struct mqbridge_item *it, *next;

	if (b == NULL)
		return;
	it = xcalloc(1, sizeof(*it));
	it->kind = MQBRIDGE_STOP;
	mqbridge_queue_push(&b->to_thread, it);
	pthread_join(b->thread, NULL);

	/* Publishes the thread never saw were not sent. */
	for (it = mqbridge_queue_take(&b->to_thread); it != NULL; it = next) {
		next = it->next;
		if (it->kind == MQBRIDGE_PUBLISH) {
			mqbridge_msg_free(it->publish);
			it->kind = MQBRIDGE_CONFIRM;
			it->outcome = MQ_CONFIRM_LOST;
			mqbridge_deliver_to_loop(b, it);
		} else {
			free(it);
		}
	}
	mqbridge_on_results(-1, 0, b);

	event_free(b->from_thread);
	event_base_free(b->tbase);
	close(b->to_thread.fd);
	close(b->to_loop.fd);
	pthread_mutex_destroy(&b->to_thread.lock);
	pthread_mutex_destroy(&b->to_loop.lock);
	free(b->reply_queue);
	free(b->url);
	free(b->name);
	free(b);
}
