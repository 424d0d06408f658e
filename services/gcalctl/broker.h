/*
 * broker: blocking AMQP 0-9-1 for gcalctl (librabbitmq-c).
 *
 * The services drive their connections from the event loop (lib/mq); this
 * tool does one thing at a time, so it uses librabbitmq's synchronous calls
 * on one channel in confirm mode. A publish returns only once the broker
 * has confirmed it (or refused it, or returned it as unroutable), which is
 * what lets `dead replay` remove a dead letter only after its copy is safe.
 * Messages taken with broker_get() stay unacknowledged until broker_ack();
 * whatever is still unacknowledged when the broker is closed goes back to
 * its queue, so listing a queue never removes anything.
 */
#ifndef BROKER_H
#define BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "mq.h"

struct broker;
struct broker_message;

/*
 * Connect, log in and open a channel in confirm mode. url may list several
 * brokers separated by commas: the first that answers is used. NULL when
 * none does (logged).
 */
struct broker *broker_open(const char *url);

/* The broker user it logged in as (owned by b). */
const char *broker_user(const struct broker *b);

/* Close the channel and the connection; unacknowledged messages return to their queues. NULL is a no-op. */
void broker_close(struct broker *b);

/*
 * Messages ready in an existing queue (a passive declare): >= 0, or -1 when
 * the queue does not exist or the broker failed (logged).
 */
long broker_queue_depth(struct broker *b, const char *queue);

/*
 * Take the next message of queue without acknowledging it: 1 with *out set
 * (the caller frees it with broker_message_free(), after any ack), 0 when
 * the queue is empty, -1 on failure (logged).
 */
int broker_get(struct broker *b, const char *queue, struct broker_message **out);

/*
 * The message's properties, routing and body, with headers as text
 * (strings as they are, numbers in decimal; tables and arrays such as
 * x-death are left out: see broker_message_death()). Owned by the message.
 */
const struct mq_message *broker_message_view(const struct broker_message *m);

/* What RabbitMQ recorded when it dead-lettered the message itself (x-death's newest entry). */
struct broker_death {
	const char *reason;	/* "rejected", "expired", "maxlen", "delivery_limit"; NULL when never dead-lettered */
	const char *queue;	/* the queue it left */
	const char *routing_key; /* the first routing key it had there */
	int64_t time;		/* seconds since the epoch; 0 when absent */
};
void broker_message_death(const struct broker_message *m, struct broker_death *out);

/* broker_message_free(NULL) is a no-op. Free only after the message's ack, if any. */
void broker_message_free(struct broker_message *m);

/* Remove a taken message from its queue. 0, or -1 (logged). */
int broker_ack(struct broker *b, const struct broker_message *m);

/*
 * Publish a message (always persistent, user-id = this connection's login,
 * as lib/mq does) and wait for the broker's verdict:
 * 0 when confirmed, -1 when refused, returned as unroutable (with
 * mandatory), timed out or failed (logged).
 */
int broker_publish(struct broker *b, const struct mq_message *msg);

/* Decides which headers a republished copy keeps. */
typedef bool (*broker_keep_cb)(const char *key);

/*
 * Publish a copy of a taken message to queue through the default exchange,
 * with its properties and body as they are (but the user-id, which becomes
 * this connection's login) and only the headers keep() accepts (types
 * preserved), persistent and mandatory; wait for the confirm as
 * broker_publish() does.
 */
int broker_republish(struct broker *b, const struct broker_message *m, const char *queue, broker_keep_cb keep);

#endif
