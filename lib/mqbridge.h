/*
 * mqbridge: an AMQP connection on a thread of its own, for an event loop
 * that must never wait on the broker (the gateway).
 *
 * librabbitmq 0.11 can block in a socket write when the broker applies
 * back-pressure, and the gateway's loop serves users. So the gateway's mq
 * connection lives on a private thread with its own event base; the loop
 * hands it publishes and receives confirms and RPC replies through two
 * mutex-protected queues, each with an eventfd the other side's loop
 * watches (memcached's thread hand-off). Nothing else is shared.
 *
 * The bridge declares a private reply queue after every (re)connect and fills
 * in reply_to for RPC publishes, so callers only match correlation ids.
 * While the connection is down, publishes fail at once and the caller
 * answers 503 instead of queueing work it cannot vouch for.
 */
#ifndef MQBRIDGE_H
#define MQBRIDGE_H

#include <stdbool.h>

#include "mq.h"

struct event_base;
struct mqbridge;

/* Runs on the bridge's thread after each connect: declare what is published to. */
typedef int (*mqbridge_declare_cb)(struct mq *mq);
/* An RPC reply, on the caller's loop; *reply lives for the callback only. */
typedef void (*mqbridge_reply_cb)(const struct mq_delivery *reply, void *arg);

/*
 * Start the thread and its connection. declare runs on that thread; reply
 * and every confirm callback run on base's loop. The caller frees the
 * bridge with mqbridge_free() before freeing base.
 */
struct mqbridge *mqbridge_new(struct event_base *base, const char *url, const char *name,
			      mqbridge_declare_cb declare, mqbridge_reply_cb reply, void *reply_arg);

/*
 * Stop the thread and close the connection. Publishes not yet settled get
 * MQ_CONFIRM_LOST, from inside this call. mqbridge_free(NULL) is a no-op.
 */
void mqbridge_free(struct mqbridge *bridge);

/* The connection is up (read without locking; may lag by a tick). */
bool mqbridge_ready(const struct mqbridge *bridge);

/*
 * Hand a message to the thread (copied). With rpc, reply_to is set to the
 * bridge's reply queue. Returns 0 and later calls confirm (may be NULL) on
 * the caller's loop, or -1 at once when the connection is down.
 */
int mqbridge_publish(struct mqbridge *bridge, const struct mq_message *msg, bool rpc, mq_confirm_cb confirm,
		     void *arg);

#endif
