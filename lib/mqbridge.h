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
 * That queue is exclusive to its connection: when the connection goes (the
 * broker, or one of a list of brokers, went away), replies to RPCs already
 * confirmed can no longer arrive, so the bridge says so at once (the lost
 * callback) and the caller answers them instead of waiting out its deadline;
 * RPCs not yet confirmed get MQ_CONFIRM_LOST. The next connection (to the
 * next URL of a list, see mq.h) declares a new reply queue.
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
 * On the caller's loop: the connection and its reply queue are gone, so no
 * reply will come for any RPC confirmed so far (those not yet confirmed get
 * MQ_CONFIRM_LOST, before or after this). Replies received before the loss
 * have all been handed to reply first.
 */
typedef void (*mqbridge_lost_cb)(void *arg);

/*
 * Start the thread and its connection (url: one AMQP URL or a comma-separated
 * list, as mq_new() takes). declare runs on that thread; reply, lost (may
 * be NULL) and every confirm callback run on base's loop; reply and lost get
 * reply_arg. The caller frees the bridge with mqbridge_free() before freeing
 * base.
 */
struct mqbridge *mqbridge_new(struct event_base *base, const char *url, const char *name,
			      mqbridge_declare_cb declare, mqbridge_reply_cb reply, mqbridge_lost_cb lost,
			      void *reply_arg);

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
