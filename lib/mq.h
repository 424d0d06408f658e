/*
 * mq: one AMQP 0-9-1 connection driven by the event loop (librabbitmq-c 0.11).
 *
 * librabbitmq is synchronous and buffers frames internally where the loop
 * cannot see them, so this module owns the awkward parts: it drains every
 * frame the library holds after each wake-up and after each synchronous call
 * (a zero-length timer, never event_active()), sends heartbeats from a timer
 * at half the negotiated interval, selects publisher confirms on its channel
 * and settles them by sequence number (honouring "multiple"), and reconnects
 * with capped exponential backoff and jitter after any failure.
 *
 * Use separate connections for publishing and for consuming: RabbitMQ stops
 * reading from publishing connections under a resource alarm, and a consumer
 * sharing that connection would stall with it.
 *
 * Every (re)connect runs the on_connect callback, which declares topology and
 * starts consumers with the synchronous calls below; those are only valid
 * inside on_connect. Delivery tags die with their connection, so each carries
 * the connection's generation and an ack for an older generation is dropped
 * (the broker redelivers that message anyway).
 *
 * Several brokers: the URL may be a comma-separated list (RabbitMQ's own
 * clients' convention). The first attempt goes to the first URL; a failed
 * attempt goes on at once to the next URL not yet tried in this round, and
 * only when every URL has failed does the backoff start. A connection that
 * was up and is lost reconnects to the next URL of the list (round robin),
 * after the backoff; on_connect runs there again, so topology and consumers
 * come back on the new node. A single URL behaves as it always did.
 *
 * Publishes are never republished by this module: publisher confirms belong
 * to one connection, so a publish unsettled when its connection ends is
 * reported MQ_CONFIRM_LOST as the connection is torn down (promptly, not
 * after a confirm timeout), and the caller publishes it again once
 * mq_ready() (mq_publish() returns -1 until then). A LOST publish may or may
 * not have reached the old broker: consumers dedupe on message_id.
 *
 * A declare that RabbitMQ refuses because the existing queue has other
 * arguments (406 PRECONDITION_FAILED) is a configuration error, not a
 * transient one: it is logged with the queue's name and the fix, and the
 * process exits with status 78 (EX_CONFIG).
 *
 * Known limits of librabbitmq 0.11: name resolution in connect and socket
 * writes (publish, ack) are blocking; once a delivery's method frame is read,
 * its header and body are awaited without a deadline. Brokers on loopback or
 * a near network make these sub-millisecond; keep messages small.
 */
#ifndef MQ_H
#define MQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct mq;

#define MQ_EXIT_CONFIG 78

/* An application header; values travel as AMQP long strings. */
struct mq_header {
	const char *key;
	const char *value;
};

struct mq_message {
	const char *exchange;		/* "" is the default exchange (routing key = queue name) */
	const char *routing_key;
	const void *body;
	size_t body_len;
	const char *content_type;	/* each property: NULL when absent */
	const char *message_id;
	const char *correlation_id;
	const char *reply_to;
	const char *type;
	/*
	 * The user-id property. On a delivery: the broker user that published
	 * it (RabbitMQ refuses a publish whose user-id is not the publishing
	 * connection's login, so it cannot be forged by another broker user),
	 * or NULL when the publisher left it out. Ignored by mq_publish(), which
	 * always sets it to this connection's own user.
	 */
	const char *user_id;
	int64_t timestamp;		/* seconds since the epoch; 0 when absent */
	const struct mq_header *headers;
	size_t nheaders;
	bool transient;			/* delivery mode 1; default is persistent (2) */
	bool mandatory;			/* have the broker return it when no queue takes it */
};

/* Identifies a delivery for mq_ack()/mq_nack(); safe to copy and keep. */
struct mq_ack_token {
	uint64_t tag;
	uint64_t generation;
};

struct mq_delivery {
	struct mq_message msg;	/* headers hold string, integer and boolean values as text */
	bool redelivered;
	long delivery_count;	/* quorum queues' x-delivery-count; 0 when absent */
	struct mq_ack_token token;
};

enum mq_confirm {
	MQ_CONFIRM_ACK,		/* the broker has taken responsibility for it */
	MQ_CONFIRM_NACK,	/* the broker refused it (e.g. reject-publish overflow), and the connection is renewed */
	MQ_CONFIRM_RETURNED,	/* mandatory and unroutable: no queue took it */
	MQ_CONFIRM_LOST,	/* the connection ended before the broker answered */
};

/* The outcome's name for logs ("ack", "nack", "unroutable", "connection lost"); static. */
const char *mq_confirm_name(enum mq_confirm outcome);

/*
 * Callbacks run from the event loop, never from inside an mq_* call, so they
 * may publish, ack and nack freely; the one exception is MQ_CONFIRM_LOST from
 * mq_free(). No callback may free its own mq.
 */
typedef int (*mq_connect_cb)(struct mq *mq, void *arg);
/* A connection that got past on_connect is gone (after its LOST confirms); the reconnect is scheduled. */
typedef void (*mq_disconnect_cb)(struct mq *mq, void *arg);
typedef void (*mq_confirm_cb)(enum mq_confirm outcome, void *arg);
/* *delivery lives only for the duration of the callback: copy with mq_delivery_dup(). */
typedef void (*mq_deliver_cb)(struct mq *mq, const struct mq_delivery *delivery, void *arg);

struct mq_opts {
	/* amqp://user:password@host:port/vhost, or several separated by commas (spaces around them allowed) */
	const char *url;
	const char *name;	/* connection name in logs and the management UI */
	uint16_t heartbeat_s;	/* 0 means 30 */
	/*
	 * After every successful (re)connect, with channel 1 open and confirms
	 * selected: declare, bind and consume. Return 0, or -1 to drop the
	 * connection and try again after the backoff.
	 */
	mq_connect_cb on_connect;
	/* May be NULL. Not called by mq_free(). Gets arg too. */
	mq_disconnect_cb on_disconnect;
	void *arg;
};

/*
 * Start connecting (the first attempt runs from the loop, not from here).
 * Copies *opts and its strings. The caller frees it with mq_free(). A URL
 * (or an entry of the list) that does not parse is a configuration error:
 * logged with its position, never its text, and exit(MQ_EXIT_CONFIG).
 */
struct mq *mq_new(struct event_base *base, const struct mq_opts *opts);

/*
 * Close the channel and connection. Unsettled publishes get MQ_CONFIRM_LOST.
 * mq_free(NULL) is a no-op.
 */
void mq_free(struct mq *mq);

/* Connected and on_connect succeeded. */
bool mq_ready(const struct mq *mq);

/*
 * The broker user this connection logs in as (from the current URL of the
 * list; "guest" when it names none). Owned by mq.
 */
const char *mq_user(const struct mq *mq);

/* Which URL of the list (0 for the first) the connection uses, or the next attempt will. */
size_t mq_broker(const struct mq *mq);

/* Topology (only inside on_connect). All durable; 0 or -1. */
enum mq_arg_type {
	MQ_ARG_STRING,
	MQ_ARG_INT,
};

struct mq_arg {
	const char *key;
	enum mq_arg_type type;
	const char *s;
	long long i;
};

#define MQ_ARG_S(k, v) ((struct mq_arg){ .key = (k), .type = MQ_ARG_STRING, .s = (v) })
#define MQ_ARG_I(k, v) ((struct mq_arg){ .key = (k), .type = MQ_ARG_INT, .i = (v) })

int mq_declare_exchange(struct mq *mq, const char *name, const char *type);
int mq_declare_queue(struct mq *mq, const char *name, const struct mq_arg *args, size_t nargs);
int mq_bind(struct mq *mq, const char *queue, const char *exchange, const char *binding_key);
/*
 * An exclusive, auto-delete, server-named queue for RPC replies; its name
 * (owned by mq, valid until the next reconnect) is stored in *name.
 */
int mq_declare_reply_queue(struct mq *mq, const char **name);
/*
 * Start a consumer with its own prefetch (basic.qos per consumer, as quorum
 * queues require). With no_ack the broker forgets messages once sent.
 */
int mq_consume(struct mq *mq, const char *queue, uint16_t prefetch, bool no_ack,
	       mq_deliver_cb deliver, void *arg);

/*
 * Cancel every consumer (graceful shutdown: deliveries stop, acks still
 * work). Later mq_consume() calls, e.g. from on_connect after a reconnect,
 * start nothing and return 0.
 */
void mq_stop_consuming(struct mq *mq);

/*
 * Publish on this connection's channel. Copies the message. The user-id
 * property is always this connection's user (mq_user()): a consumer can
 * tell which service sent a message, and the broker vouches for it.
 * Returns 0 and later calls confirm (may be NULL) exactly once, or -1 when
 * not connected or the write failed (confirm is then not called). A
 * publish the broker refuses (no write permission on the exchange) closes
 * the channel: it is reported MQ_CONFIRM_LOST and the connection restarts.
 */
int mq_publish(struct mq *mq, const struct mq_message *msg, mq_confirm_cb confirm, void *arg);

/* Publishes not yet settled by the broker. */
size_t mq_unconfirmed(const struct mq *mq);

/*
 * Settle a delivery. Returns -1 (and does nothing) when the token belongs to
 * an earlier connection or the write failed; the broker then redelivers.
 */
int mq_ack(struct mq *mq, struct mq_ack_token token);
int mq_nack(struct mq *mq, struct mq_ack_token token, bool requeue);

/* A deep copy of a delivery for work that outlives the callback; free with mq_delivery_free(). */
struct mq_delivery *mq_delivery_dup(const struct mq_delivery *delivery);
void mq_delivery_free(struct mq_delivery *delivery);
/* Value of a header of the delivery, or NULL. */
const char *mq_delivery_header(const struct mq_delivery *delivery, const char *key);

#endif
