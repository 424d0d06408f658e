/*
 * mq: one AMQP 0-9-1 connection driven by the event loop (see mq.h).
 *
 * librabbitmq-c 0.11 is synchronous and decodes frames lazily from its own
 * read buffer, where epoll cannot see them. So every wake-up (socket
 * readable, a zero-length "kick" timer armed after each synchronous call,
 * the heartbeat tick) runs the same drain: take frames with a zero timeout
 * until the library says there are none, dispatching deliveries, publisher
 * confirms, returns and closes. The library only sends heartbeats when it is
 * called, and with a zero timeout it never reports a silent peer, so the tick
 * both calls it and watches how long the socket has been quiet.
 *
 * Failures never tear the connection down where they are noticed (that may
 * be inside mq_publish() called from a user callback): mq_fail() marks the
 * connection broken and a zero timer resets it from the loop, reports
 * MQ_CONFIRM_LOST for unsettled publishes, and schedules the reconnect with
 * capped exponential backoff and full jitter, on the next broker when the
 * URL lists several (brokers not yet tried in a round are tried at once; the
 * backoff comes after a whole round failed). Callbacks therefore always run
 * from the loop, never from inside an mq_* call, except MQ_CONFIRM_LOST from
 * mq_free().
 */
#include "mq.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <event2/event.h>
#include <sodium.h>

#include "amqptext.h"
#include "cfg.h"
#include "log.h"
#include "xmalloc.h"

#define MQ_CHANNEL 1
#define MQ_DRAIN_BUDGET 256
#define MQ_CONNECT_TIMEOUT_S 5
#define MQ_HANDSHAKE_TIMEOUT_S 5
#define MQ_RPC_TIMEOUT_S 10
#define MQ_CLOSE_TIMEOUT_S 2
#define MQ_HEARTBEAT_DEFAULT_S 30
#define MQ_TICK_MAX_S 5			/* also the granularity of confirm deadlines */
#define MQ_CONFIRM_TIMEOUT_MS 30000
#define MQ_BACKOFF_MIN_MS 250
#define MQ_BACKOFF_MAX_MS 10000
#define MQ_STABLE_MS 30000		/* up this long: the next failure starts the backoff afresh */

/* Identifies the connection (and the broker it uses) in every log line; never the URL (it holds the password). */
#define MQ_WHERE(mq)                                                            \
	LOG_STR("conn", (mq)->name), LOG_STR("host", (mq)->info.host),          \
	LOG_INT("port", (mq)->info.port), LOG_STR("vhost", (mq)->info.vhost),   \
	LOG_INT("broker", (long long)(mq)->cur + 1)

enum mq_state {
	MQ_DOWN,	/* no connection; a connect attempt is scheduled */
	MQ_OPENING,	/* channel open and confirms selected; inside on_connect */
	MQ_READY,
	MQ_BROKEN,	/* failed; the reset timer tears it down */
};

/* A publish the broker has not settled yet. */
struct mq_pending {
	uint64_t seq;
	int64_t deadline_ms;
	bool mandatory;
	bool returned;
	/* For matching a basic.return to its publish (mandatory only). */
	char *exchange;
	char *routing_key;
	char *message_id;
	mq_confirm_cb confirm;
	void *arg;
	struct mq_pending *next;
};

struct mq_consumer {
	char *tag;		/* the broker's consumer tag */
	char *queue;
	bool cancelled;		/* by mq_stop_consuming(); its late deliveries still go to deliver */
	mq_deliver_cb deliver;
	void *arg;
	struct mq_consumer *next;
};

/* One entry of the URL list. */
struct mq_broker {
	char *url_parsed;		/* the URL copy the fields of info point into */
	struct amqp_connection_info info;
};

struct mq {
	struct event_base *base;
	char *name;
	struct mq_broker *brokers;
	size_t nbrokers;
	size_t cur;			/* the broker the current or next attempt uses */
	size_t round_failed;		/* attempts failed in a row since the last backoff */
	struct amqp_connection_info info;	/* brokers[cur].info */
	uint16_t heartbeat_s;
	mq_connect_cb on_connect;
	mq_disconnect_cb on_disconnect;
	void *arg;

	enum mq_state state;
	bool was_ready;			/* this connection got past on_connect */
	amqp_connection_state_t conn;
	uint64_t generation;
	uint64_t next_seq;
	int negotiated_heartbeat_s;
	int64_t last_rx_ms;		/* last sign of life from the broker */
	int64_t ready_since_ms;
	unsigned attempt;		/* consecutive failures, for the backoff */
	bool stop_consuming;
	char *reply_queue;

	struct mq_pending *pending, *pending_tail;
	size_t npending;
	struct mq_consumer *consumers;

	struct event *io;		/* socket readable; per connection */
	struct event *kick;		/* zero timer: drain what the library buffered */
	struct event *tick;		/* heartbeats, silent peers, overdue confirms */
	struct event *retry;		/* the next connect attempt */
	struct event *reset;		/* zero timer: tear down a broken connection */
};

const char *mq_confirm_name(enum mq_confirm outcome)
{
	switch (outcome) {
	case MQ_CONFIRM_ACK:
		return "ack";
	case MQ_CONFIRM_NACK:
		return "nack";
	case MQ_CONFIRM_RETURNED:
		return "unroutable";
	case MQ_CONFIRM_LOST:
		break;
	}
	return "connection lost";
}

static int64_t mq_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool mq_bytes_eq(amqp_bytes_t b, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	return b.len == n && (n == 0 || memcmp(b.bytes, s, n) == 0);
}

static amqp_bytes_t mq_cstr(const char *s)
{
	return s != NULL ? amqp_cstring_bytes(s) : amqp_empty_bytes;
}

static void mq_kick(struct mq *mq)
{
	static const struct timeval zero = { 0, 0 };

	if (!evtimer_pending(mq->kick, NULL))
		evtimer_add(mq->kick, &zero);
}

/*
 * The connection is unusable: log why (once), and let the reset timer tear
 * it down from the loop. Safe anywhere, including inside user callbacks.
 */
static void mq_fail(struct mq *mq, const char *why, const char *detail)
{
	static const struct timeval zero = { 0, 0 };

	if (mq->state == MQ_DOWN || mq->state == MQ_BROKEN)
		return;
	log_warn("amqp connection lost; reconnecting", MQ_WHERE(mq), LOG_STR("reason", why),
		 LOG_STR("detail", detail));
	mq->state = MQ_BROKEN;
	evtimer_add(mq->reset, &zero);
}

static void mq_fail_status(struct mq *mq, const char *why, int status)
{
	mq_fail(mq, why, amqp_error_string2(status));
}

static void mq_pending_free(struct mq_pending *p)
{
	free(p->exchange);
	free(p->routing_key);
	free(p->message_id);
	free(p);
}

/* Call confirm for each entry of a detached list, then free it; the list is no longer reachable from mq. */
static void mq_settle_list(struct mq_pending *list, enum mq_confirm outcome)
{
	while (list != NULL) {
		struct mq_pending *p = list;

		list = p->next;
		if (p->confirm != NULL)
			p->confirm(p->returned ? MQ_CONFIRM_RETURNED : outcome, p->arg);
		mq_pending_free(p);
	}
}

static struct mq_pending *mq_take_pending(struct mq *mq)
{
	struct mq_pending *list = mq->pending;

	mq->pending = mq->pending_tail = NULL;
	mq->npending = 0;
	return list;
}

static void mq_consumers_free(struct mq *mq)
{
	while (mq->consumers != NULL) {
		struct mq_consumer *c = mq->consumers;

		mq->consumers = c->next;
		free(c->tag);
		free(c->queue);
		free(c);
	}
}

/* Drop the connection without a close handshake (it failed) and everything tied to it. */
static void mq_teardown(struct mq *mq)
{
	if (mq->io != NULL) {
		event_free(mq->io);
		mq->io = NULL;
	}
	evtimer_del(mq->tick);
	evtimer_del(mq->kick);
	evtimer_del(mq->reset);
	if (mq->conn != NULL) {
		amqp_destroy_connection(mq->conn);
		mq->conn = NULL;
	}
	mq_consumers_free(mq);
	free(mq->reply_queue);
	mq->reply_queue = NULL;
	mq->state = MQ_DOWN;
}

/*
 * Full jitter over a doubling cap: reconnecting clients spread out instead
 * of arriving at the broker together. A connection that stayed up a while
 * starts the backoff afresh; one that flaps keeps growing it.
 */
static unsigned mq_schedule_connect(struct mq *mq)
{
	unsigned cap = MQ_BACKOFF_MIN_MS;
	struct timeval tv;
	unsigned delay;

	if (mq->ready_since_ms != 0 && mq_now_ms() - mq->ready_since_ms >= MQ_STABLE_MS)
		mq->attempt = 0;
	mq->ready_since_ms = 0;
	for (unsigned i = 0; i < mq->attempt && cap < MQ_BACKOFF_MAX_MS; i++)
		cap *= 2;
	if (cap > MQ_BACKOFF_MAX_MS)
		cap = MQ_BACKOFF_MAX_MS;
	else
		mq->attempt++;
	delay = randombytes_uniform(cap + 1);
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(mq->retry, &tv);
	return delay;
}

/* The next broker of the list (round robin); the same one when there is only one. */
static void mq_next_broker(struct mq *mq)
{
	mq->cur = (mq->cur + 1) % mq->nbrokers;
	mq->info = mq->brokers[mq->cur].info;
}

/*
 * Tear down, schedule the next attempt (on the next broker of the list,
 * after the backoff), then tell publishers their messages are lost and the
 * owner that the connection is gone. Nothing is republished here: confirms
 * belong to a connection, and each caller decides what a lost publish means.
 */
static void mq_reset(struct mq *mq)
{
	struct mq_pending *lost = mq_take_pending(mq);
	bool was_ready = mq->was_ready;
	unsigned delay;

	mq_teardown(mq);
	mq->was_ready = false;
	mq->round_failed = 0;
	mq_next_broker(mq);
	delay = mq_schedule_connect(mq);
	log_debug("amqp reconnect scheduled", MQ_WHERE(mq), LOG_INT("delay_ms", delay));
	mq_settle_list(lost, MQ_CONFIRM_LOST);
	if (was_ready && mq->on_disconnect != NULL)
		mq->on_disconnect(mq, mq->arg);
}

static void mq_on_reset(evutil_socket_t fd, short what, void *arg)
{
	struct mq *mq = arg;

	(void)fd;
	(void)what;
	if (mq->state == MQ_BROKEN)
		mq_reset(mq);
}

/* Settle the publish with this sequence number, or all up to it when multiple. */
static void mq_on_confirm(struct mq *mq, uint64_t tag, bool multiple, enum mq_confirm outcome)
{
	struct mq_pending *done = NULL, **done_tail = &done;
	struct mq_pending **pp = &mq->pending, *last = NULL;

	while (*pp != NULL) {
		struct mq_pending *p = *pp;

		if (multiple ? p->seq <= tag : p->seq == tag) {
			*pp = p->next;
			p->next = NULL;
			*done_tail = p;
			done_tail = &p->next;
			mq->npending--;
			if (!multiple)
				break;
			continue;
		}
		if (p->seq > tag)
			break;
		last = p;
		pp = &p->next;
	}
	/* The tail may have been settled: find the new one. */
	if (mq->pending == NULL)
		mq->pending_tail = NULL;
	else if (*pp == NULL)
		mq->pending_tail = last;
	mq_settle_list(done, outcome);
}

/*
 * A mandatory message no queue took. basic.return carries no sequence
 * number, but returns come in publish order before the ack for the same
 * message, so the oldest unreturned mandatory publish with the same
 * exchange, routing key and message_id is the one.
 */
static void mq_on_return(struct mq *mq, const amqp_basic_return_t *r)
{
	amqp_bytes_t exchange = r->exchange, routing_key = r->routing_key;
	amqp_message_t msg;
	amqp_rpc_reply_t rr;
	char *ex = amqptext_bytes(exchange), *rk = amqptext_bytes(routing_key);
	bool found = false;

	rr = amqp_read_message(mq->conn, MQ_CHANNEL, &msg, 0);
	if (rr.reply_type != AMQP_RESPONSE_NORMAL) {
		char text[256];

		amqptext_reply(rr, text, sizeof(text));
		mq_fail(mq, "reading a returned message failed", text);
		free(ex);
		free(rk);
		return;
	}
	for (struct mq_pending *p = mq->pending; p != NULL && !found; p = p->next) {
		bool has_id = (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0;

		if (!p->mandatory || p->returned || strcmp(p->exchange, ex) != 0 || strcmp(p->routing_key, rk) != 0)
			continue;
		if (has_id ? !mq_bytes_eq(msg.properties.message_id, p->message_id) : p->message_id != NULL)
			continue;
		p->returned = true;
		found = true;
	}
	if (found)
		log_debug("amqp message returned as unroutable", MQ_WHERE(mq), LOG_STR("exchange", ex),
			  LOG_STR("routing_key", rk), LOG_INT("reply_code", r->reply_code));
	else
		log_warn("amqp returned a message that matches no unsettled publish", MQ_WHERE(mq),
			 LOG_STR("exchange", ex), LOG_STR("routing_key", rk));
	amqp_destroy_message(&msg);
	free(ex);
	free(rk);
}

/* A delivery that owns every string, the form mq_delivery_dup() returns and mq_delivery_free() frees. */
static struct mq_delivery *mq_delivery_from_amqp(struct mq *mq, const amqp_basic_deliver_t *m,
						  const amqp_message_t *msg)
{
	const amqp_basic_properties_t *p = &msg->properties;
	struct mq_delivery *d = xcalloc(1, sizeof(*d));
	char *body = xmalloc(msg->body.len + 1);
	const char *count;

	if (msg->body.len > 0)
		memcpy(body, msg->body.bytes, msg->body.len);
	body[msg->body.len] = '\0';
	d->msg.body = body;
	d->msg.body_len = msg->body.len;
	d->msg.exchange = amqptext_bytes(m->exchange);
	d->msg.routing_key = amqptext_bytes(m->routing_key);
	d->msg.content_type = amqptext_prop(p, AMQP_BASIC_CONTENT_TYPE_FLAG, p->content_type);
	d->msg.message_id = amqptext_prop(p, AMQP_BASIC_MESSAGE_ID_FLAG, p->message_id);
	d->msg.correlation_id = amqptext_prop(p, AMQP_BASIC_CORRELATION_ID_FLAG, p->correlation_id);
	d->msg.reply_to = amqptext_prop(p, AMQP_BASIC_REPLY_TO_FLAG, p->reply_to);
	d->msg.type = amqptext_prop(p, AMQP_BASIC_TYPE_FLAG, p->type);
	d->msg.user_id = amqptext_prop(p, AMQP_BASIC_USER_ID_FLAG, p->user_id);
	d->msg.timestamp = (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) ? (int64_t)p->timestamp : 0;
	d->msg.transient = (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) && p->delivery_mode == AMQP_DELIVERY_NONPERSISTENT;
	if ((p->_flags & AMQP_BASIC_HEADERS_FLAG) && p->headers.num_entries > 0) {
		struct mq_header *h = xcalloc((size_t)p->headers.num_entries, sizeof(*h));
		size_t n = 0;

		for (int i = 0; i < p->headers.num_entries; i++) {
			char *value = amqptext_field(&p->headers.entries[i].value);

			if (value == NULL)
				continue;
			h[n].key = amqptext_bytes(p->headers.entries[i].key);
			h[n].value = value;
			n++;
		}
		d->msg.headers = h;
		d->msg.nheaders = n;
	}
	d->redelivered = m->redelivered;
	d->token.tag = m->delivery_tag;
	d->token.generation = mq->generation;
	count = mq_delivery_header(d, "x-delivery-count");
	d->delivery_count = count != NULL ? strtol(count, NULL, 10) : 0;
	return d;
}

static struct mq_consumer *mq_find_consumer(struct mq *mq, amqp_bytes_t tag)
{
	for (struct mq_consumer *c = mq->consumers; c != NULL; c = c->next)
		if (mq_bytes_eq(tag, c->tag))
			return c;
	return NULL;
}

static void mq_on_deliver(struct mq *mq, const amqp_basic_deliver_t *m)
{
	struct mq_consumer *c = mq_find_consumer(mq, m->consumer_tag);
	amqp_message_t msg;
	amqp_rpc_reply_t rr;
	struct mq_delivery *d;

	rr = amqp_read_message(mq->conn, MQ_CHANNEL, &msg, 0);
	if (rr.reply_type != AMQP_RESPONSE_NORMAL) {
		char text[256];

		amqptext_reply(rr, text, sizeof(text));
		mq_fail(mq, "reading a delivery failed", text);
		return;
	}
	if (c == NULL) {
		/* Cannot happen with our own consumers; the broker redelivers it after the next reconnect. */
		log_warn("amqp delivery for an unknown consumer; leaving it unsettled", MQ_WHERE(mq),
			 LOG_INT("delivery_tag", m->delivery_tag));
		amqp_destroy_message(&msg);
		return;
	}
	d = mq_delivery_from_amqp(mq, m, &msg);
	amqp_destroy_message(&msg);
	c->deliver(mq, d, c->arg);
	mq_delivery_free(d);
}

static void mq_send_close_ok(struct mq *mq, amqp_channel_t channel, amqp_method_number_t method)
{
	amqp_channel_close_ok_t ok = { 0 };

	amqp_send_method(mq->conn, channel, method, &ok);
}

static void mq_on_close(struct mq *mq, const amqp_frame_t *f)
{
	char text[256];
	bool connection = f->payload.method.id == AMQP_CONNECTION_CLOSE_METHOD;
	amqp_rpc_reply_t r = { .reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = f->payload.method };

	amqptext_reply(r, text, sizeof(text));
	if (connection)
		mq_send_close_ok(mq, 0, AMQP_CONNECTION_CLOSE_OK_METHOD);
	else
		mq_send_close_ok(mq, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD);
	mq_fail(mq, connection ? "the broker closed the connection" : "the broker closed the channel", text);
}

/* One frame the drain took from the library. */
static void mq_dispatch(struct mq *mq, const amqp_frame_t *f)
{
	amqp_method_number_t id;

	if (f->frame_type == AMQP_FRAME_HEARTBEAT)
		return;
	if (f->frame_type != AMQP_FRAME_METHOD) {
		mq_fail(mq, "protocol out of step", "a content frame arrived without its method");
		return;
	}
	id = f->payload.method.id;
	switch (id) {
	case AMQP_BASIC_DELIVER_METHOD:
		mq_on_deliver(mq, f->payload.method.decoded);
		break;
	case AMQP_BASIC_ACK_METHOD: {
		amqp_basic_ack_t *a = f->payload.method.decoded;

		mq_on_confirm(mq, a->delivery_tag, a->multiple, MQ_CONFIRM_ACK);
		break;
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *n = f->payload.method.decoded;

		mq_on_confirm(mq, n->delivery_tag, n->multiple, MQ_CONFIRM_NACK);
		/*
		 * Our queues have no length limit, so a nack means a queue could not
		 * take the message. RabbitMQ 3.10's quorum queue client on a channel
		 * whose first publish to a queue met a leader election keeps asking
		 * the old leader's node, and nacks until that node is back
		 * (docs/operations.md, "Running on a RabbitMQ cluster"); a new
		 * connection opens a new channel, which asks the new leader.
		 */
		mq_fail(mq, "the broker refused a publish", "a new channel may reach the queue");
		break;
	}
	case AMQP_BASIC_RETURN_METHOD:
		mq_on_return(mq, f->payload.method.decoded);
		break;
	case AMQP_CHANNEL_CLOSE_METHOD:
	case AMQP_CONNECTION_CLOSE_METHOD:
		mq_on_close(mq, f);
		break;
	case AMQP_BASIC_CANCEL_METHOD: {
		amqp_basic_cancel_t *c = f->payload.method.decoded;
		struct mq_consumer *consumer = mq_find_consumer(mq, c->consumer_tag);
		const char *queue = consumer != NULL ? consumer->queue : "";

		if (mq->stop_consuming) {
			log_info("amqp consumer cancelled by the broker while stopping", MQ_WHERE(mq),
				 LOG_STR("queue", queue));
			break;
		}
		/* The queue was deleted or failed over: declaring it again needs a new connection. */
		mq_fail(mq, "the broker cancelled a consumer", queue);
		break;
	}
	case AMQP_CONNECTION_BLOCKED_METHOD: {
		amqp_connection_blocked_t *b = f->payload.method.decoded;
		char *reason = amqptext_bytes(b->reason);

		log_warn("amqp broker blocked publishing on this connection", MQ_WHERE(mq), LOG_STR("reason", reason));
		free(reason);
		break;
	}
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		log_info("amqp broker unblocked this connection", MQ_WHERE(mq));
		break;
	default:
		/* basic.cancel-ok after mq_stop_consuming(), late RPC replies: nothing to do. */
		log_debug("amqp frame ignored", MQ_WHERE(mq), LOG_INT("method", id));
		break;
	}
}

/*
 * Take every frame the library has, up to a budget so one busy connection
 * cannot starve the rest of the loop; if frames remain, come back through
 * the kick timer in the next loop iteration (event_active() would rerun us
 * in this one).
 */
static void mq_drain(struct mq *mq)
{
	static const struct timeval zero = { 0, 0 };

	for (int n = 0; n < MQ_DRAIN_BUDGET; n++) {
		amqp_frame_t f;
		int st;

		if (mq->state != MQ_READY)
			return;
		amqp_maybe_release_buffers(mq->conn);
		st = amqp_simple_wait_frame_noblock(mq->conn, &f, &zero);
		if (st == AMQP_STATUS_TIMEOUT)
			return;
		if (st != AMQP_STATUS_OK) {
			mq_fail_status(mq, "reading from the broker failed", st);
			return;
		}
		mq->last_rx_ms = mq_now_ms();
		mq_dispatch(mq, &f);
	}
	if (mq->state == MQ_READY && (amqp_frames_enqueued(mq->conn) || amqp_data_in_buffer(mq->conn)))
		mq_kick(mq);
}

static void mq_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct mq *mq = arg;

	(void)fd;
	(void)what;
	mq->last_rx_ms = mq_now_ms();
	mq_drain(mq);
}

static void mq_on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	mq_drain(arg);
}

/*
 * The library sends heartbeats only when called, and with the zero timeout
 * we use it never notices a silent broker, so the tick does both: the drain
 * sends a heartbeat when one is due, and a socket quiet for two intervals
 * (the broker sends one every half interval) means the peer is gone. It also
 * fails a connection whose oldest publish waited too long for its confirm.
 */
static void mq_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct mq *mq = arg;
	int64_t now = mq_now_ms();

	(void)fd;
	(void)what;
	if (mq->state != MQ_READY)
		return;
	mq_drain(mq);
	if (mq->state != MQ_READY)
		return;
	if (mq->negotiated_heartbeat_s > 0 && now - mq->last_rx_ms > 2000LL * mq->negotiated_heartbeat_s) {
		mq_fail(mq, "heartbeat timeout", "nothing heard from the broker for two heartbeat intervals");
		return;
	}
	if (mq->pending != NULL && now > mq->pending->deadline_ms) {
		char detail[96];

		snprintf(detail, sizeof(detail), "publish %llu unconfirmed after %d ms",
			 (unsigned long long)mq->pending->seq, MQ_CONFIRM_TIMEOUT_MS);
		mq_fail(mq, "publisher confirm overdue", detail);
	}
}

/* Connection properties: our name for the management UI, and the notifications we handle. */
static amqp_table_t mq_client_properties(const char *name, amqp_table_entry_t *props, amqp_table_entry_t *caps,
					 amqp_table_t *caps_table)
{
	caps[0].key = amqp_cstring_bytes("connection.blocked");
	caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[0].value.value.boolean = 1;
	caps[1].key = amqp_cstring_bytes("consumer_cancel_notify");
	caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[1].value.value.boolean = 1;
	caps_table->num_entries = 2;
	caps_table->entries = caps;
	props[0].key = amqp_cstring_bytes("connection_name");
	props[0].value.kind = AMQP_FIELD_KIND_UTF8;
	props[0].value.value.bytes = amqp_cstring_bytes(name);
	props[1].key = amqp_cstring_bytes("capabilities");
	props[1].value.kind = AMQP_FIELD_KIND_TABLE;
	props[1].value.value.table = *caps_table;
	return (amqp_table_t){ .num_entries = 2, .entries = props };
}

/* Socket, login, channel and confirm mode; 0, or -1 with the reason in text. */
static int mq_open(struct mq *mq, char *text, size_t len)
{
	struct timeval connect_timeout = { MQ_CONNECT_TIMEOUT_S, 0 };
	struct timeval handshake_timeout = { MQ_HANDSHAKE_TIMEOUT_S, 0 };
	struct timeval rpc_timeout = { MQ_RPC_TIMEOUT_S, 0 };
	amqp_table_entry_t props[2], caps[2];
	amqp_table_t caps_table, properties;
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	int st;

	mq->conn = amqp_new_connection();
	sock = mq->conn != NULL ? amqp_tcp_socket_new(mq->conn) : NULL;
	if (sock == NULL) {
		snprintf(text, len, "cannot create a socket");
		return -1;
	}
	amqp_set_handshake_timeout(mq->conn, &handshake_timeout);
	amqp_set_rpc_timeout(mq->conn, &rpc_timeout);
	st = amqp_socket_open_noblock(sock, mq->info.host, mq->info.port, &connect_timeout);
	if (st != AMQP_STATUS_OK) {
		snprintf(text, len, "connect: %s", amqp_error_string2(st));
		return -1;
	}
	properties = mq_client_properties(mq->name, props, caps, &caps_table);
	r = amqp_login_with_properties(mq->conn, mq->info.vhost, AMQP_DEFAULT_MAX_CHANNELS, AMQP_DEFAULT_FRAME_SIZE,
				       mq->heartbeat_s, &properties, AMQP_SASL_METHOD_PLAIN, mq->info.user,
				       mq->info.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		size_t n = (size_t)snprintf(text, len, "login: ");

		amqptext_reply(r, text + n, len - n);
		return -1;
	}
	if (amqp_channel_open(mq->conn, MQ_CHANNEL) == NULL ||
	    amqp_confirm_select(mq->conn, MQ_CHANNEL) == NULL) {
		size_t n = (size_t)snprintf(text, len, "channel: ");

		amqptext_reply(amqp_get_rpc_reply(mq->conn), text + n, len - n);
		return -1;
	}
	return 0;
}

static void mq_start_timers(struct mq *mq)
{
	int tick_s = mq->negotiated_heartbeat_s / 2;
	struct timeval tick;

	if (tick_s < 1)
		tick_s = 1;
	if (tick_s > MQ_TICK_MAX_S || mq->negotiated_heartbeat_s == 0)
		tick_s = MQ_TICK_MAX_S;
	tick.tv_sec = tick_s;
	tick.tv_usec = 0;
	mq->io = xevent_new(mq->base, amqp_get_sockfd(mq->conn), EV_READ | EV_PERSIST, mq_on_readable, mq);
	event_add(mq->io, NULL);
	evtimer_add(mq->tick, &tick);
}

/*
 * One connect attempt, from the retry timer. Everything here is
 * synchronous and bounded by the connect, handshake and RPC timeouts.
 */
static void mq_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct mq *mq = arg;
	char text[512];

	(void)fd;
	(void)what;
	if (mq_open(mq, text, sizeof(text)) < 0) {
		static const struct timeval zero = { 0, 0 };
		unsigned delay;

		mq_teardown(mq);
		/* Brokers not yet tried in this round are tried at once (through the loop); then the backoff. */
		if (++mq->round_failed < mq->nbrokers) {
			log_warn("amqp connect failed; trying the next broker", MQ_WHERE(mq), LOG_STR("error", text));
			mq_next_broker(mq);
			evtimer_add(mq->retry, &zero);
			return;
		}
		delay = mq_schedule_connect(mq);
		log_warn("amqp connect failed", MQ_WHERE(mq), LOG_STR("error", text), LOG_INT("retry_ms", delay));
		mq->round_failed = 0;
		mq_next_broker(mq);
		return;
	}
	mq->round_failed = 0;
	mq->generation++;
	mq->next_seq = 1;
	mq->negotiated_heartbeat_s = amqp_get_heartbeat(mq->conn);
	mq->last_rx_ms = mq_now_ms();
	mq->state = MQ_OPENING;
	mq_start_timers(mq);
	if (mq->on_connect != NULL && mq->on_connect(mq, mq->arg) < 0) {
		if (mq->state == MQ_OPENING)
			log_warn("amqp connection set-up failed; reconnecting", MQ_WHERE(mq));
		mq_reset(mq);
		return;
	}
	if (mq->state != MQ_OPENING) {
		mq_reset(mq);
		return;
	}
	mq->state = MQ_READY;
	mq->was_ready = true;
	mq->ready_since_ms = mq_now_ms();
	log_info("amqp connected", MQ_WHERE(mq), LOG_INT("brokers", (long long)mq->nbrokers),
		 LOG_INT("heartbeat_s", mq->negotiated_heartbeat_s), LOG_INT("generation", mq->generation));
	mq_kick(mq);
}

/*
 * The URL list into brokers[]. A URL that does not parse is a
 * configuration error: the entry is named by its position, never its text.
 */
static void mq_parse_urls(struct mq *mq, const char *url)
{
	char **urls = cfg_split_urls(url, &mq->nbrokers);

	if (urls == NULL) {
		log_error("the AMQP URL is empty or has an empty entry between commas", LOG_STR("conn", mq->name));
		exit(MQ_EXIT_CONFIG);
	}
	mq->brokers = xcalloc(mq->nbrokers, sizeof(*mq->brokers));
	for (size_t i = 0; i < mq->nbrokers; i++) {
		struct mq_broker *b = &mq->brokers[i];

		b->url_parsed = urls[i];
		urls[i] = NULL;
		amqp_default_connection_info(&b->info);
		if (amqp_parse_url(b->url_parsed, &b->info) != AMQP_STATUS_OK || b->info.ssl) {
			log_error("the AMQP URL is not a valid amqp://user:password@host:port/vhost URL (amqps is not "
				  "supported)",
				  LOG_STR("conn", mq->name), LOG_INT("entry", (long long)i + 1),
				  LOG_INT("entries", (long long)mq->nbrokers));
			exit(MQ_EXIT_CONFIG);
		}
	}
	cfg_urls_free(urls);
	mq->cur = 0;
	mq->info = mq->brokers[0].info;
}

struct mq *mq_new(struct event_base *base, const struct mq_opts *opts)
{
	static const struct timeval zero = { 0, 0 };
	struct mq *mq = xcalloc(1, sizeof(*mq));

	if (sodium_init() < 0) {
		log_error("libsodium failed to initialise");
		exit(1);
	}
	mq->base = base;
	mq->name = xstrdup(opts->name != NULL ? opts->name : "amqp");
	mq->heartbeat_s = opts->heartbeat_s != 0 ? opts->heartbeat_s : MQ_HEARTBEAT_DEFAULT_S;
	mq->on_connect = opts->on_connect;
	mq->on_disconnect = opts->on_disconnect;
	mq->arg = opts->arg;
	mq_parse_urls(mq, opts->url);
	mq->kick = xevent_new(base, -1, 0, mq_on_kick, mq);
	mq->tick = xevent_new(base, -1, EV_PERSIST, mq_on_tick, mq);
	mq->retry = xevent_new(base, -1, 0, mq_on_retry, mq);
	mq->reset = xevent_new(base, -1, 0, mq_on_reset, mq);
	evtimer_add(mq->retry, &zero);
	return mq;
}

/* A bounded close handshake, so the broker logs a clean close and requeues our unacked deliveries at once. */
static void mq_close_politely(struct mq *mq)
{
	struct timeval timeout = { MQ_CLOSE_TIMEOUT_S, 0 };

	amqp_set_rpc_timeout(mq->conn, &timeout);
	if (amqp_channel_close(mq->conn, MQ_CHANNEL, AMQP_REPLY_SUCCESS).reply_type == AMQP_RESPONSE_NORMAL)
		amqp_connection_close(mq->conn, AMQP_REPLY_SUCCESS);
}

void mq_free(struct mq *mq)
{
	struct mq_pending *lost;

	if (mq == NULL)
		return;
	if (mq->state == MQ_READY || mq->state == MQ_OPENING)
		mq_close_politely(mq);
	lost = mq_take_pending(mq);
	mq_teardown(mq);
	event_free(mq->kick);
	event_free(mq->tick);
	event_free(mq->retry);
	event_free(mq->reset);
	/* mq is still valid (and DOWN) here, so these callbacks may call mq_publish() and get -1. */
	mq_settle_list(lost, MQ_CONFIRM_LOST);
	for (size_t i = 0; i < mq->nbrokers; i++)
		free(mq->brokers[i].url_parsed);
	free(mq->brokers);
	free(mq->name);
	free(mq);
}

bool mq_ready(const struct mq *mq)
{
	return mq != NULL && mq->state == MQ_READY;
}

const char *mq_user(const struct mq *mq)
{
	return mq->info.user;
}

size_t mq_broker(const struct mq *mq)
{
	return mq->cur;
}

/* Synchronous calls belong in on_connect; outside it they would block the loop on a round trip. */
static bool mq_in_on_connect(struct mq *mq, const char *what)
{
	if (mq->state == MQ_OPENING)
		return true;
	if (mq->state == MQ_BROKEN)
		log_debug("amqp call skipped: the connection already failed", MQ_WHERE(mq), LOG_STR("call", what));
	else
		log_error("amqp synchronous call outside on_connect", MQ_WHERE(mq), LOG_STR("call", what));
	return false;
}

/*
 * Check the reply of the RPC just made. A 406 on a declare means the
 * existing queue or exchange has other arguments, which no reconnect will
 * fix: stop with EX_CONFIG and tell the operator what to do.
 */
static int mq_rpc_check(struct mq *mq, const char *what, const char *kind, const char *name)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(mq->conn);
	char text[512];

	mq_kick(mq);
	if (r.reply_type == AMQP_RESPONSE_NORMAL) {
		mq->last_rx_ms = mq_now_ms();
		return 0;
	}
	amqptext_reply(r, text, sizeof(text));
	if (kind != NULL && r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
	    ((amqp_channel_close_t *)r.reply.decoded)->reply_code == AMQP_PRECONDITION_FAILED) {
		bool queue = strcmp(kind, "queue") == 0;

		log_error(queue ? "the queue exists with other arguments; drain and delete it, or restore the previous "
				  "setting; see docs/operations.md"
				: "the exchange exists with another type or arguments; delete it, or restore the "
				  "previous setting; see docs/operations.md",
			  MQ_WHERE(mq), LOG_STR(kind, name), LOG_STR("broker", text));
		exit(MQ_EXIT_CONFIG);
	}
	log_error("amqp call refused", MQ_WHERE(mq), LOG_STR("call", what), LOG_STR("name", name),
		  LOG_STR("error", text));
	mq_fail(mq, "amqp call refused", what);
	return -1;
}

static amqp_table_t mq_args_table(const struct mq_arg *args, size_t nargs, amqp_table_entry_t **entries)
{
	amqp_table_entry_t *e = nargs > 0 ? xcalloc(nargs, sizeof(*e)) : NULL;

	for (size_t i = 0; i < nargs; i++) {
		e[i].key = amqp_cstring_bytes(args[i].key);
		if (args[i].type == MQ_ARG_STRING) {
			e[i].value.kind = AMQP_FIELD_KIND_UTF8;
			e[i].value.value.bytes = mq_cstr(args[i].s);
		} else {
			e[i].value.kind = AMQP_FIELD_KIND_I64;
			e[i].value.value.i64 = args[i].i;
		}
	}
	*entries = e;
	return (amqp_table_t){ .num_entries = (int)nargs, .entries = e };
}

int mq_declare_exchange(struct mq *mq, const char *name, const char *type)
{
	if (!mq_in_on_connect(mq, "exchange.declare"))
		return -1;
	amqp_exchange_declare(mq->conn, MQ_CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0, 1, 0, 0,
			      amqp_empty_table);
	return mq_rpc_check(mq, "exchange.declare", "exchange", name);
}

int mq_declare_queue(struct mq *mq, const char *name, const struct mq_arg *args, size_t nargs)
{
	amqp_table_entry_t *entries;
	amqp_table_t table;

	if (!mq_in_on_connect(mq, "queue.declare"))
		return -1;
	table = mq_args_table(args, nargs, &entries);
	amqp_queue_declare(mq->conn, MQ_CHANNEL, amqp_cstring_bytes(name), 0, 1, 0, 0, table);
	free(entries);
	return mq_rpc_check(mq, "queue.declare", "queue", name);
}

int mq_bind(struct mq *mq, const char *queue, const char *exchange, const char *binding_key)
{
	if (!mq_in_on_connect(mq, "queue.bind"))
		return -1;
	amqp_queue_bind(mq->conn, MQ_CHANNEL, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
			mq_cstr(binding_key), amqp_empty_table);
	return mq_rpc_check(mq, "queue.bind", NULL, queue);
}

int mq_declare_reply_queue(struct mq *mq, const char **name)
{
	amqp_queue_declare_ok_t *ok;

	if (!mq_in_on_connect(mq, "queue.declare"))
		return -1;
	ok = amqp_queue_declare(mq->conn, MQ_CHANNEL, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
	if (mq_rpc_check(mq, "queue.declare", NULL, "(reply queue)") < 0)
		return -1;
	free(mq->reply_queue);
	mq->reply_queue = amqptext_bytes(ok->queue);
	*name = mq->reply_queue;
	return 0;
}

int mq_consume(struct mq *mq, const char *queue, uint16_t prefetch, bool no_ack, mq_deliver_cb deliver, void *arg)
{
	amqp_basic_consume_ok_t *ok;
	struct mq_consumer *c;

	if (mq->stop_consuming) {
		log_debug("amqp consumer not started: consuming was stopped", MQ_WHERE(mq), LOG_STR("queue", queue));
		return 0;
	}
	if (!mq_in_on_connect(mq, "basic.consume"))
		return -1;
	amqp_basic_qos(mq->conn, MQ_CHANNEL, 0, prefetch, 0);
	if (mq_rpc_check(mq, "basic.qos", NULL, queue) < 0)
		return -1;
	ok = amqp_basic_consume(mq->conn, MQ_CHANNEL, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, no_ack, 0,
				amqp_empty_table);
	if (mq_rpc_check(mq, "basic.consume", NULL, queue) < 0)
		return -1;
	c = xcalloc(1, sizeof(*c));
	c->tag = amqptext_bytes(ok->consumer_tag);
	c->queue = xstrdup(queue);
	c->deliver = deliver;
	c->arg = arg;
	c->next = mq->consumers;
	mq->consumers = c;
	return 0;
}

/*
 * basic.cancel goes out without waiting for cancel-ok (which the drain
 * ignores), so a shutdown never blocks the loop on a round trip. Deliveries
 * already on their way still reach the consumer's callback.
 */
void mq_stop_consuming(struct mq *mq)
{
	if (mq == NULL)
		return;
	mq->stop_consuming = true;
	if (mq->state != MQ_READY && mq->state != MQ_OPENING)
		return;
	for (struct mq_consumer *c = mq->consumers; c != NULL; c = c->next) {
		amqp_basic_cancel_t req = { .consumer_tag = amqp_cstring_bytes(c->tag), .nowait = 0 };
		int st;

		if (c->cancelled)
			continue;
		c->cancelled = true;
		st = amqp_send_method(mq->conn, MQ_CHANNEL, AMQP_BASIC_CANCEL_METHOD, &req);
		if (st != AMQP_STATUS_OK) {
			mq_fail_status(mq, "basic.cancel failed", st);
			return;
		}
		log_info("amqp consumer cancelled", MQ_WHERE(mq), LOG_STR("queue", c->queue));
	}
	mq_kick(mq);
}

int mq_publish(struct mq *mq, const struct mq_message *msg, mq_confirm_cb confirm, void *arg)
{
	amqp_basic_properties_t props = { 0 };
	amqp_table_entry_t *headers = NULL;
	amqp_bytes_t body = { .len = msg->body_len, .bytes = (void *)msg->body };
	struct mq_pending *p;
	int st;

	if (mq->state != MQ_READY && mq->state != MQ_OPENING) {
		log_debug("amqp publish while not connected", MQ_WHERE(mq), LOG_STR("routing_key", msg->routing_key));
		return -1;
	}
	props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.delivery_mode = msg->transient ? AMQP_DELIVERY_NONPERSISTENT : AMQP_DELIVERY_PERSISTENT;
#define MQ_SET_PROP(field, flag)                                \
	if (msg->field != NULL) {                               \
		props._flags |= (flag);                         \
		props.field = amqp_cstring_bytes(msg->field);   \
	}
	MQ_SET_PROP(content_type, AMQP_BASIC_CONTENT_TYPE_FLAG)
	MQ_SET_PROP(message_id, AMQP_BASIC_MESSAGE_ID_FLAG)
	MQ_SET_PROP(correlation_id, AMQP_BASIC_CORRELATION_ID_FLAG)
	MQ_SET_PROP(reply_to, AMQP_BASIC_REPLY_TO_FLAG)
	MQ_SET_PROP(type, AMQP_BASIC_TYPE_FLAG)
#undef MQ_SET_PROP
	/*
	 * Whatever msg says: RabbitMQ accepts no other user-id from this login. So a retry or dead-letter
	 * copy of a delivery names us, not its original's publisher (retry.c keeps that in x-dead-publisher).
	 */
	props._flags |= AMQP_BASIC_USER_ID_FLAG;
	props.user_id = amqp_cstring_bytes(mq->info.user);
	if (msg->timestamp != 0) {
		props._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
		props.timestamp = (uint64_t)msg->timestamp;
	}
	if (msg->nheaders > 0) {
		headers = xcalloc(msg->nheaders, sizeof(*headers));
		for (size_t i = 0; i < msg->nheaders; i++) {
			headers[i].key = amqp_cstring_bytes(msg->headers[i].key);
			headers[i].value.kind = AMQP_FIELD_KIND_UTF8;
			headers[i].value.value.bytes = mq_cstr(msg->headers[i].value);
		}
		props._flags |= AMQP_BASIC_HEADERS_FLAG;
		props.headers.num_entries = (int)msg->nheaders;
		props.headers.entries = headers;
	}
	st = amqp_basic_publish(mq->conn, MQ_CHANNEL, mq_cstr(msg->exchange), mq_cstr(msg->routing_key),
				msg->mandatory, 0, &props, body);
	free(headers);
	mq_kick(mq);
	if (st != AMQP_STATUS_OK) {
		mq_fail_status(mq, "publish failed", st);
		return -1;
	}
	p = xcalloc(1, sizeof(*p));
	p->seq = mq->next_seq++;
	p->deadline_ms = mq_now_ms() + MQ_CONFIRM_TIMEOUT_MS;
	p->confirm = confirm;
	p->arg = arg;
	p->mandatory = msg->mandatory;
	if (msg->mandatory) {
		p->exchange = xstrdup(msg->exchange != NULL ? msg->exchange : "");
		p->routing_key = xstrdup(msg->routing_key != NULL ? msg->routing_key : "");
		p->message_id = msg->message_id != NULL ? xstrdup(msg->message_id) : NULL;
	}
	if (mq->pending_tail != NULL)
		mq->pending_tail->next = p;
	else
		mq->pending = p;
	mq->pending_tail = p;
	mq->npending++;
	return 0;
}

size_t mq_unconfirmed(const struct mq *mq)
{
	return mq->npending;
}

/* Delivery tags belong to one channel of one connection: an old one would ack something else, or close the channel. */
static bool mq_token_current(struct mq *mq, struct mq_ack_token token, const char *what)
{
	if ((mq->state == MQ_READY || mq->state == MQ_OPENING) && token.generation == mq->generation)
		return true;
	log_debug("amqp settle dropped: the delivery belongs to an earlier connection", MQ_WHERE(mq),
		  LOG_STR("call", what), LOG_INT("token_generation", token.generation),
		  LOG_INT("generation", mq->generation));
	return false;
}

int mq_ack(struct mq *mq, struct mq_ack_token token)
{
	int st;

	if (!mq_token_current(mq, token, "ack"))
		return -1;
	st = amqp_basic_ack(mq->conn, MQ_CHANNEL, token.tag, 0);
	mq_kick(mq);
	if (st != AMQP_STATUS_OK) {
		mq_fail_status(mq, "ack failed", st);
		return -1;
	}
	return 0;
}

int mq_nack(struct mq *mq, struct mq_ack_token token, bool requeue)
{
	int st;

	if (!mq_token_current(mq, token, "nack"))
		return -1;
	st = amqp_basic_nack(mq->conn, MQ_CHANNEL, token.tag, 0, requeue);
	mq_kick(mq);
	if (st != AMQP_STATUS_OK) {
		mq_fail_status(mq, "nack failed", st);
		return -1;
	}
	return 0;
}

static char *mq_strdup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

struct mq_delivery *mq_delivery_dup(const struct mq_delivery *delivery)
{
	struct mq_delivery *d = xmalloc(sizeof(*d));
	const struct mq_message *m = &delivery->msg;
	char *body = xmalloc(m->body_len + 1);

	*d = *delivery;
	if (m->body_len > 0)
		memcpy(body, m->body, m->body_len);
	body[m->body_len] = '\0';
	d->msg.body = body;
	d->msg.exchange = mq_strdup_or_null(m->exchange);
	d->msg.routing_key = mq_strdup_or_null(m->routing_key);
	d->msg.content_type = mq_strdup_or_null(m->content_type);
	d->msg.message_id = mq_strdup_or_null(m->message_id);
	d->msg.correlation_id = mq_strdup_or_null(m->correlation_id);
	d->msg.reply_to = mq_strdup_or_null(m->reply_to);
	d->msg.type = mq_strdup_or_null(m->type);
	d->msg.user_id = mq_strdup_or_null(m->user_id);
	d->msg.headers = NULL;
	if (m->nheaders > 0) {
		struct mq_header *h = xcalloc(m->nheaders, sizeof(*h));

		for (size_t i = 0; i < m->nheaders; i++) {
			h[i].key = xstrdup(m->headers[i].key);
			h[i].value = mq_strdup_or_null(m->headers[i].value);
		}
		d->msg.headers = h;
	}
	return d;
}

void mq_delivery_free(struct mq_delivery *delivery)
{
	struct mq_message *m;

	if (delivery == NULL)
		return;
	m = &delivery->msg;
	for (size_t i = 0; i < m->nheaders; i++) {
		free((void *)m->headers[i].key);
		free((void *)m->headers[i].value);
	}
	free((void *)m->headers);
	free((void *)m->body);
	free((void *)m->exchange);
	free((void *)m->routing_key);
	free((void *)m->content_type);
	free((void *)m->message_id);
	free((void *)m->correlation_id);
	free((void *)m->reply_to);
	free((void *)m->type);
	free((void *)m->user_id);
	free(delivery);
}

const char *mq_delivery_header(const struct mq_delivery *delivery, const char *key)
{
	for (size_t i = 0; i < delivery->msg.nheaders; i++)
		if (strcmp(delivery->msg.headers[i].key, key) == 0)
			return delivery->msg.headers[i].value;
	return NULL;
}
