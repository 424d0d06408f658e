/*
 * test_mq: lib/mq and lib/topology against the run's real RabbitMQ (a
 * virtual host of its own). The topology as the management API sees it;
 * 500 persistent publishes confirmed and consumed exactly once with their
 * properties and headers intact under a prefetch of 50; a mandatory publish
 * nobody routes; dead-lettering, redelivery counts and the broker-side delay;
 * connections killed through the management API (reconnect, stale ack
 * tokens refused); consumers cancelled for a graceful stop; a nacked publish
 * moving the publisher to a new connection; a 406 on
 * redeclare exiting with status 78; a broker that refuses connections
 * without stalling the loop; unsettled publishes reported lost by
 * mq_free(); several brokers in one URL list (a dead first entry skipped, a
 * broker going away with a publish unconfirmed: LOST at once, the caller's
 * republish confirmed on the next broker, consumers back there; the
 * gateway's bridge told that its RPC replies are lost, and its new reply
 * queue answered); and the broker users of lib/topology's grants: every publish
 * names its connection's user (user-id), a forged user-id and a publish
 * without write permission are refused by the broker (a channel error),
 * and each service's grant is enough for what it declares and consumes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/event.h>

#include "log.h"
#include "mq.h"
#include "mqbridge.h"
#include "tap.h"
#include "testenv.h"
#include "topology.h"
#include "xmalloc.h"

#define VHOST "mq"
#define DELAY_MS 300
#define N_BULK 500
#define PREFETCH 50
#define Q_BULK "test.bulk"
#define CONN_PUB "test-mq publisher"
#define CONN_CON "test-mq consumer"

struct side {
	struct mq *mq;
	int connects;
};

struct tally {
	int ack, nack, returned, lost;
	bool done;
};

struct bulk {
	int seen[N_BULK];
	int unique;
	int duplicates;
	int field_errors;
	struct mq_ack_token outstanding[N_BULK];
	int noutstanding;
	int max_outstanding;
};

static struct event_base *base;
static char *url;
static struct side pub, con;
static bool inside_mq_call;
static int callbacks_inside_calls;

static struct bulk bulk;
static struct tally bulk_confirms;
static int bulk_others;		/* deliveries on test.bulk that are not part of the bulk run */

/* Other consumers' observations. */
static struct {
	bool have;
	struct mq_ack_token token;
	int deliveries;
	bool redelivered_last;
	uint64_t generation_last;
} hold;

static struct {
	bool got;
	bool redelivered;
	long delivery_count;
	int deliveries;
} redeliver;

static struct {
	bool got;
	int64_t published_ms;
	int64_t arrived_ms;
	char *exchange;
	char *routing_key;
} delay;

static struct {
	bool got;
	char *reason;
	char *queue;
	char *routing_key;
} dead;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void on_confirm(enum mq_confirm outcome, void *arg)
{
	struct tally *t = arg;

	if (inside_mq_call)
		callbacks_inside_calls++;
	switch (outcome) {
	case MQ_CONFIRM_ACK:
		t->ack++;
		break;
	case MQ_CONFIRM_NACK:
		t->nack++;
		break;
	case MQ_CONFIRM_RETURNED:
		t->returned++;
		break;
	case MQ_CONFIRM_LOST:
		t->lost++;
		break;
	}
	t->done = true;
}

static int publish(struct mq *mq, const struct mq_message *m, struct tally *t)
{
	int rc;

	inside_mq_call = true;
	rc = mq_publish(mq, m, on_confirm, t);
	inside_mq_call = false;
	return rc;
}

static int ack(struct mq *mq, struct mq_ack_token token)
{
	int rc;

	inside_mq_call = true;
	rc = mq_ack(mq, token);
	inside_mq_call = false;
	return rc;
}

static bool field_is(const char *got, const char *want)
{
	return got != NULL && strcmp(got, want) == 0;
}

static void on_bulk(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	const char *id = d->msg.message_id;
	char want[64];
	long i;

	(void)arg;
	if (inside_mq_call)
		callbacks_inside_calls++;
	if (field_is(id, "hold-1")) {
		hold.have = true;
		hold.token = d->token;
		hold.deliveries++;
		hold.redelivered_last = d->redelivered;
		hold.generation_last = d->token.generation;
		return;
	}
	if (id == NULL || strncmp(id, "bulk-", 5) != 0) {
		bulk_others++;
		ack(mq, d->token);
		return;
	}
	i = strtol(id + 5, NULL, 10);
	if (i < 0 || i >= N_BULK) {
		bulk.field_errors++;
		ack(mq, d->token);
		return;
	}
	if (bulk.seen[i]++ == 0)
		bulk.unique++;
	else
		bulk.duplicates++;
	snprintf(want, sizeof(want), "%ld", i);
	if (!field_is(mq_delivery_header(d, "x-index"), want) || !field_is(mq_delivery_header(d, "x-kind"), "bulk") ||
	    !field_is(mq_delivery_header(d, "x-empty"), "") || d->msg.nheaders != 3 ||
	    !field_is(d->msg.content_type, "application/json") || !field_is(d->msg.type, "test.bulk") ||
	    !field_is(d->msg.reply_to, "nobody") || !field_is(d->msg.exchange, "") ||
	    !field_is(d->msg.routing_key, Q_BULK) || !field_is(d->msg.user_id, "guest") ||
	    d->msg.timestamp != 1700000000 + i || d->msg.transient ||
	    d->redelivered || d->delivery_count != 0)
		bulk.field_errors++;
	snprintf(want, sizeof(want), "corr-%ld", i);
	if (!field_is(d->msg.correlation_id, want))
		bulk.field_errors++;
	snprintf(want, sizeof(want), "{\"n\":%ld}", i);
	if (d->msg.body_len != strlen(want) || memcmp(d->msg.body, want, d->msg.body_len) != 0)
		bulk.field_errors++;
	/* Settled later from a timer, so several deliveries are outstanding at once. */
	bulk.outstanding[bulk.noutstanding++] = d->token;
	if (bulk.noutstanding > bulk.max_outstanding)
		bulk.max_outstanding = bulk.noutstanding;
}

static void on_ack_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	for (int i = 0; i < bulk.noutstanding; i++)
		ack(con.mq, bulk.outstanding[i]);
	bulk.noutstanding = 0;
}

static void on_lead(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	const char *id = d->msg.message_id;

	(void)arg;
	if (field_is(id, "dl-1")) {
		mq_nack(mq, d->token, false);
	} else if (field_is(id, "redeliver-1")) {
		redeliver.deliveries++;
		if (redeliver.deliveries == 1) {
			mq_nack(mq, d->token, true);
			return;
		}
		redeliver.got = true;
		redeliver.redelivered = d->redelivered;
		redeliver.delivery_count = d->delivery_count;
		mq_ack(mq, d->token);
	} else if (field_is(id, "delay-1")) {
		delay.got = true;
		delay.arrived_ms = now_ms();
		delay.exchange = dup_or_null(d->msg.exchange);
		delay.routing_key = dup_or_null(d->msg.routing_key);
		mq_ack(mq, d->token);
	} else {
		mq_ack(mq, d->token);
	}
}

/* What reached scheduler.commands (the broker-user tests publish there). */
static struct {
	int got;
	char *user_id;
	char *message_id;
} commands;

static void on_command(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	(void)arg;
	commands.got++;
	free(commands.user_id);
	free(commands.message_id);
	commands.user_id = dup_or_null(d->msg.user_id);
	commands.message_id = dup_or_null(d->msg.message_id);
	mq_ack(mq, d->token);
}

static void on_dead(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	(void)arg;
	if (field_is(d->msg.message_id, "dl-1")) {
		dead.got = true;
		dead.reason = dup_or_null(mq_delivery_header(d, "x-first-death-reason"));
		dead.queue = dup_or_null(mq_delivery_header(d, "x-first-death-queue"));
		dead.routing_key = dup_or_null(d->msg.routing_key);
	}
	mq_ack(mq, d->token);
}

static int declare_all(struct mq *mq)
{
	if (topology_declare_scheduler(mq, DELAY_MS) < 0 || mq_declare_queue(mq, Q_BULK, NULL, 0) < 0)
		return -1;
	return 0;
}

static int on_pub_connect(struct mq *mq, void *arg)
{
	struct side *s = arg;

	s->connects++;
	return declare_all(mq);
}

static int on_con_connect(struct mq *mq, void *arg)
{
	struct side *s = arg;

	s->connects++;
	if (declare_all(mq) < 0 ||
	    mq_consume(mq, Q_BULK, PREFETCH, false, on_bulk, NULL) < 0 ||
	    mq_consume(mq, TOPO_Q_SCHEDULER_LEADS, PREFETCH, false, on_lead, NULL) < 0 ||
	    mq_consume(mq, TOPO_Q_SCHEDULER_DEAD, 10, false, on_dead, NULL) < 0 ||
	    mq_consume(mq, TOPO_Q_SCHEDULER_COMMANDS, 10, false, on_command, NULL) < 0)
		return -1;
	return 0;
}

static struct mq *side_new(struct side *s, const char *name, mq_connect_cb cb)
{
	struct mq_opts o = { .url = url, .name = name, .on_connect = cb, .arg = s };

	return mq_new(base, &o);
}

/* Runs the loop until a condition computed by check() holds. */
static bool wait_for(bool (*check)(void), int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	bool done = false;

	while (!(done = check()) && now_ms() < end) {
		bool never = false;

		testenv_run_until(base, &never, 20);
	}
	return done;
}

static bool both_ready(void)
{
	return mq_ready(pub.mq) && mq_ready(con.mq);
}

/* Management API */

static cJSON *api_json(const char *path)
{
	char *body = testenv_rabbit_get(path);
	cJSON *j = body != NULL ? cJSON_Parse(body) : NULL;

	free(body);
	return j;
}

static long api_delete(const char *path)
{
	const char *api = testenv_require("TEST_RABBITMQ_API");
	char *full = xasprintf("%s%s", api, path);
	CURL *c = curl_easy_init();
	long status = 0;

	curl_easy_setopt(c, CURLOPT_URL, full);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	free(full);
	return status;
}

static const char *json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double json_num(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void check_topology(void)
{
	cJSON *q = api_json("/queues/" VHOST "/" TOPO_Q_SCHEDULER_DELAY);
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(q, "arguments");
	cJSON *b, *tier;
	bool bound = false;

	CHECK(q != NULL, "management API shows scheduler.delay");
	CHECK_STR(json_str(q, "type"), "quorum", "scheduler.delay is a quorum queue");
	CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(q, "durable")), "scheduler.delay is durable");
	CHECK_INT(json_num(args, "x-message-ttl"), DELAY_MS, "scheduler.delay x-message-ttl is the delay");
	CHECK_STR(json_str(args, "x-dead-letter-exchange"), "scheduler", "scheduler.delay dead-letters to scheduler");
	CHECK_STR(json_str(args, "x-dead-letter-routing-key"), "lead.ready", "... with routing key lead.ready");
	CHECK_STR(json_str(args, "x-dead-letter-strategy"), "at-least-once", "scheduler.delay dead-letters at least once");
	CHECK_STR(json_str(args, "x-overflow"), "reject-publish", "scheduler.delay overflow rejects publishes");
	CHECK_INT(json_num(args, "x-delivery-limit"), 20, "scheduler.delay delivery limit 20");
	cJSON_Delete(q);

	b = api_json("/queues/" VHOST "/" TOPO_Q_SCHEDULER_DELAY "/bindings");
	for (const cJSON *e = b != NULL ? b->child : NULL; e != NULL; e = e->next)
		if (field_is(json_str(e, "source"), "leads") && field_is(json_str(e, "routing_key"), "lead.analyzed"))
			bound = true;
	CHECK(bound, "scheduler.delay is bound to leads / lead.analyzed");
	cJSON_Delete(b);

	tier = api_json("/queues/" VHOST "/scheduler.retry.1");
	args = cJSON_GetObjectItemCaseSensitive(tier, "arguments");
	CHECK_STR(json_str(tier, "type"), "quorum", "scheduler.retry.1 is a quorum queue");
	CHECK_INT(json_num(args, "x-message-ttl"), 5000, "scheduler.retry.1 waits 5 s");
	CHECK_STR(json_str(args, "x-dead-letter-exchange"), "", "scheduler.retry.1 dead-letters to the default exchange");
	CHECK_STR(json_str(args, "x-dead-letter-routing-key"), "scheduler.leads", "... into scheduler.leads");
	cJSON_Delete(tier);

	q = api_json("/queues/" VHOST "/" TOPO_Q_MAILER_JOBS);
	args = cJSON_GetObjectItemCaseSensitive(q, "arguments");
	CHECK_STR(json_str(args, "x-dead-letter-routing-key"), "mailer.dead",
		  "the scheduler declares mailer.jobs too, dead-lettering to mailer.dead");
	cJSON_Delete(q);
}

static void check_tiers(void)
{
	const long *ttl;
	size_t n = topology_scheduler_retry_tiers(&ttl);
	long sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += ttl[i];
	CHECK(n == 7 && sum >= 15 * 60 * 1000, "scheduler tiers span at least 15 minutes (%zu tiers, %ld ms)", n, sum);
	CHECK_STR(topology_scheduler_retry_queue(1), "scheduler.retry.1", "tier 1 is scheduler.retry.1");
	CHECK(topology_scheduler_retry_queue(0) == NULL && topology_scheduler_retry_queue(n + 1) == NULL,
	      "tiers out of range have no queue");
	n = topology_mailer_retry_tiers(&ttl);
	sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += ttl[i];
	CHECK(sum >= 15 * 60 * 1000, "mailer tiers span at least 15 minutes");
}

/* Bulk publish and consume. */

static bool bulk_confirmed(void)
{
	return bulk_confirms.ack + bulk_confirms.nack + bulk_confirms.returned + bulk_confirms.lost >= N_BULK;
}

static bool bulk_consumed(void)
{
	return bulk.unique >= N_BULK && bulk.noutstanding == 0;
}

static void test_bulk(void)
{
	struct event *acker = event_new(base, -1, EV_PERSIST, on_ack_timer, NULL);
	struct timeval every = { 0, 10000 };
	int failed = 0;

	event_add(acker, &every);
	for (int i = 0; i < N_BULK; i++) {
		char id[32], idx[16], corr[32], body[32];
		struct mq_header h[] = { { "x-index", idx }, { "x-kind", "bulk" }, { "x-empty", "" } };
		struct mq_message m = {
			.exchange = "", .routing_key = Q_BULK, .body = body, .content_type = "application/json",
			.message_id = id, .correlation_id = corr, .reply_to = "nobody", .type = "test.bulk",
			.timestamp = 1700000000 + i, .headers = h, .nheaders = 3,
			/* Ignored: mq_publish() names the connection's own user, the only one the broker accepts. */
			.user_id = "someone-else",
		};

		snprintf(id, sizeof(id), "bulk-%d", i);
		snprintf(idx, sizeof(idx), "%d", i);
		snprintf(corr, sizeof(corr), "corr-%d", i);
		snprintf(body, sizeof(body), "{\"n\":%d}", i);
		m.body_len = strlen(body);
		if (publish(pub.mq, &m, &bulk_confirms) < 0)
			failed++;
	}
	CHECK_INT(failed, 0, "all %d publishes were written", N_BULK);
	CHECK(mq_unconfirmed(pub.mq) > 0, "publishes wait for their confirms (%zu unconfirmed)", mq_unconfirmed(pub.mq));
	CHECK(wait_for(bulk_confirmed, 30000), "every publish was settled");
	CHECK_INT(bulk_confirms.ack, N_BULK, "every publish was acked by the broker");
	CHECK_INT(bulk_confirms.nack + bulk_confirms.returned + bulk_confirms.lost, 0, "none nacked, returned or lost");
	CHECK_INT(mq_unconfirmed(pub.mq), 0, "nothing left unconfirmed");
	CHECK(wait_for(bulk_consumed, 30000), "every message was consumed and acked");
	CHECK_INT(bulk.unique, N_BULK, "%d distinct messages delivered", N_BULK);
	CHECK_INT(bulk.duplicates, 0, "no message delivered twice");
	CHECK_INT(bulk.field_errors, 0,
		  "message ids, headers, properties and bodies arrived intact, user-id naming the publisher's login");
	CHECK(bulk.max_outstanding <= PREFETCH && bulk.max_outstanding > 1,
	      "unacked deliveries stayed within the prefetch of %d (max %d)", PREFETCH, bulk.max_outstanding);
	CHECK_INT(callbacks_inside_calls, 0, "no callback ran inside mq_publish or mq_ack");
	event_free(acker);
}

/* Mandatory and returned. */

static struct tally unroutable, routable;

static bool mandatory_done(void)
{
	return unroutable.done && routable.done;
}

static void test_mandatory(void)
{
	struct mq_message lost = { .exchange = TOPO_EX_SCHEDULER, .routing_key = "no.such.key", .body = "x",
				   .body_len = 1, .message_id = "unroutable-1", .mandatory = true };
	struct mq_message kept = { .exchange = "", .routing_key = Q_BULK, .body = "y", .body_len = 1,
				   .message_id = "routable-1", .mandatory = true };

	CHECK_INT(publish(pub.mq, &lost, &unroutable), 0, "mandatory publish to an unbound key was written");
	CHECK_INT(publish(pub.mq, &kept, &routable), 0, "mandatory publish to a queue was written");
	CHECK(wait_for(mandatory_done, 10000), "both mandatory publishes were settled");
	CHECK_INT(unroutable.returned, 1, "the unroutable one came back RETURNED");
	CHECK_INT(unroutable.ack + unroutable.nack + unroutable.lost, 0, "... and only that (the broker's ack is not reported)");
	CHECK_INT(routable.ack, 1, "the routable one was ACKed");
}

/* Dead letters, redelivery and the delay. */

static struct tally misc;

static bool dead_done(void)
{
	return dead.got && redeliver.got && delay.got;
}

static void test_dead_letter_and_delay(void)
{
	struct mq_message dl = { .exchange = TOPO_EX_SCHEDULER, .routing_key = TOPO_RK_LEAD_READY, .body = "{}",
				 .body_len = 2, .message_id = "dl-1" };
	struct mq_message rd = dl;
	struct mq_message dm = { .exchange = TOPO_EX_LEADS, .routing_key = TOPO_RK_LEAD_ANALYZED, .body = "{}",
				 .body_len = 2, .message_id = "delay-1", .content_type = "application/json" };

	rd.message_id = "redeliver-1";
	CHECK_INT(publish(pub.mq, &dl, &misc), 0, "published a message to scheduler.leads to reject");
	CHECK_INT(publish(pub.mq, &rd, &misc), 0, "published a message to scheduler.leads to requeue once");
	delay.published_ms = now_ms();
	CHECK_INT(publish(pub.mq, &dm, &misc), 0, "published lead.analyzed to the leads exchange");
	CHECK(wait_for(dead_done, 15000), "the rejected, requeued and delayed messages all arrived");
	CHECK(dead.got, "nack without requeue on scheduler.leads dead-lettered it to scheduler.dead");
	CHECK_STR(dead.reason, "rejected", "x-first-death-reason is rejected");
	CHECK_STR(dead.queue, "scheduler.leads", "x-first-death-queue is scheduler.leads");
	CHECK_STR(dead.routing_key, "scheduler.dead", "it was routed with key scheduler.dead");
	CHECK(redeliver.redelivered, "a requeued message comes back marked redelivered");
	CHECK_INT(redeliver.delivery_count, 1, "x-delivery-count (an integer header) reads 1");
	CHECK(delay.got && delay.arrived_ms - delay.published_ms >= DELAY_MS,
	      "lead.analyzed reached scheduler.leads no sooner than %d ms (%lld ms)", DELAY_MS,
	      (long long)(delay.arrived_ms - delay.published_ms));
	CHECK(delay.arrived_ms - delay.published_ms < 10000, "... and not much later");
	CHECK_STR(delay.exchange, "scheduler", "it came through the scheduler exchange");
	CHECK_STR(delay.routing_key, "lead.ready", "with routing key lead.ready");
	CHECK_INT(misc.ack, 3, "the three publishes were confirmed");
}

/* Reconnects. */

/* The management API's name of our connection with this connection_name, or NULL (caller frees). */
static char *find_connection(const char *conn_name)
{
	cJSON *list = api_json("/connections");
	char *name = NULL;

	for (const cJSON *c = list != NULL ? list->child : NULL; c != NULL && name == NULL; c = c->next) {
		const cJSON *props = cJSON_GetObjectItemCaseSensitive(c, "client_properties");

		if (field_is(json_str(c, "vhost"), VHOST) && field_is(json_str(props, "connection_name"), conn_name))
			name = dup_or_null(json_str(c, "name"));
	}
	cJSON_Delete(list);
	return name;
}

static bool kill_connection(const char *conn_name)
{
	int64_t end = now_ms() + 30000;
	char *name = NULL;
	long status = 0;

	while (name == NULL && now_ms() < end) {
		bool never = false;

		name = find_connection(conn_name);
		if (name == NULL)
			testenv_run_until(base, &never, 500);
	}
	if (name != NULL) {
		CURL *c = curl_easy_init();
		char *esc = curl_easy_escape(c, name, 0);
		char *path = xasprintf("/connections/%s", esc);

		status = api_delete(path);
		free(path);
		curl_free(esc);
		curl_easy_cleanup(c);
		free(name);
	}
	return status == 204;
}

static bool con_reconnected(void)
{
	return con.connects >= 2 && mq_ready(con.mq);
}

static bool pub_reconnected(void)
{
	return pub.connects >= 2 && mq_ready(pub.mq);
}

static bool hold_received(void)
{
	return hold.have;
}

static bool hold_redelivered(void)
{
	return hold.deliveries >= 2;
}

static struct tally after;

static bool after_done(void)
{
	return after.done;
}

static void test_reconnect(void)
{
	struct mq_message h = { .exchange = "", .routing_key = Q_BULK, .body = "h", .body_len = 1,
				.message_id = "hold-1" };
	struct mq_message a = { .exchange = "", .routing_key = Q_BULK, .body = "a", .body_len = 1,
				.message_id = "after-1" };
	struct mq_ack_token old;

	CHECK_INT(publish(pub.mq, &h, &misc), 0, "published a message the consumer holds unacked");
	CHECK(wait_for(hold_received, 10000), "the held message was delivered");
	old = hold.token;
	CHECK(kill_connection(CONN_CON), "the management API closed the consumer's connection");
	CHECK(wait_for(con_reconnected, 20000), "the consumer reconnected and is ready again");
	CHECK_INT(con.connects, 2, "on_connect ran twice on the consumer");
	CHECK_INT(mq_ack(con.mq, old), -1, "an ack token from the old connection is refused");
	CHECK(wait_for(hold_redelivered, 10000), "the unacked message was redelivered on the new connection");
	CHECK(hold.redelivered_last && hold.generation_last == old.generation + 1,
	      "... marked redelivered, with the new generation");
	CHECK_INT(mq_ack(con.mq, hold.token), 0, "and its new token acks");

	CHECK(kill_connection(CONN_PUB), "the management API closed the publisher's connection");
	CHECK(wait_for(pub_reconnected, 20000), "the publisher reconnected");
	CHECK_INT(pub.connects, 2, "on_connect ran twice on the publisher");
	CHECK_INT(publish(pub.mq, &a, &after), 0, "publishing works after the reconnect");
	CHECK(wait_for(after_done, 10000) && after.ack == 1, "... and is confirmed");
}

/* Graceful stop: consumers cancelled, nothing more delivered, the connection stays up. */

static bool stopped_published(void)
{
	return after.ack >= 2;
}

static void test_stop_consuming(void)
{
	struct mq_message m = { .exchange = "", .routing_key = Q_BULK, .body = "s", .body_len = 1,
				.message_id = "stopped-1" };
	bool never = false;
	int before = bulk_others;

	mq_stop_consuming(con.mq);
	testenv_run_until(base, &never, 200);
	CHECK_INT(publish(pub.mq, &m, &after), 0, "published after the consumers were cancelled");
	CHECK(wait_for(stopped_published, 10000), "... and it was confirmed");
	testenv_run_until(base, &never, 1000);
	CHECK_INT(bulk_others, before, "no delivery reached a cancelled consumer");
	CHECK(mq_ready(con.mq), "the consuming connection stays up after mq_stop_consuming");
}

/* A nack: the publisher moves to a new connection (a new channel), where publishing goes on. */

static struct side nk;
static struct tally refused, accepted;

/* test.full takes nothing: every publish to it is nacked. */
static int on_nack_connect(struct mq *mq, void *arg)
{
	struct side *s = arg;
	struct mq_arg args[] = { MQ_ARG_I("x-max-length", 0), MQ_ARG_S("x-overflow", "reject-publish") };

	s->connects++;
	return mq_declare_queue(mq, "test.full", args, 2);
}

static bool nack_ready(void)
{
	return mq_ready(nk.mq);
}

static bool refused_and_back(void)
{
	return refused.done && nk.connects >= 2 && mq_ready(nk.mq);
}

static bool accepted_done(void)
{
	return accepted.done;
}

static void test_nack_reconnects(void)
{
	struct mq_message full = { .exchange = "", .routing_key = "test.full", .body = "f", .body_len = 1,
				   .message_id = "full-1" };
	struct mq_message ok = { .exchange = "", .routing_key = Q_BULK, .body = "o", .body_len = 1,
				 .message_id = "after-nack-1" };

	nk.mq = side_new(&nk, "test-mq nack", on_nack_connect);
	CHECK(wait_for(nack_ready, 20000), "a publisher with a queue that refuses every message");
	CHECK_INT(publish(nk.mq, &full, &refused), 0, "published to that queue");
	CHECK(wait_for(refused_and_back, 20000), "the publish was settled and the publisher reconnected");
	CHECK_INT(refused.nack, 1, "... NACKed");
	CHECK_INT(nk.connects, 2, "on_connect ran again after the nack");
	CHECK_INT(publish(nk.mq, &ok, &accepted), 0, "publishing works on the new connection");
	CHECK(wait_for(accepted_done, 10000) && accepted.ack == 1, "... and is confirmed");
	mq_free(nk.mq);
}

/* 406: a child declares scheduler.delay with another TTL and must exit 78. */

static struct event_base *child_base;
static struct mq *child_mq;

static int on_child_connect(struct mq *mq, void *arg)
{
	(void)arg;
	return topology_declare_scheduler(mq, DELAY_MS + 1000);
}

static void test_precondition(void)
{
	pid_t pid = fork();
	int status = 0;
	int64_t end = now_ms() + 30000;
	pid_t got = 0;

	if (pid == 0) {
		struct mq_opts o = { .url = url, .name = "test-mq 406", .on_connect = on_child_connect };

		child_base = event_base_new();
		child_mq = mq_new(child_base, &o);
		event_base_dispatch(child_base);
		_exit(1);
	}
	CHECK(pid > 0, "forked the 406 child");
	while (pid > 0 && (got = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < end)
		usleep(20000);
	if (pid > 0 && got == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	CHECK(got == pid && WIFEXITED(status) && WEXITSTATUS(status) == MQ_EXIT_CONFIG,
	      "redeclaring scheduler.delay with another TTL exits with status 78 (status 0x%x)", status);
}

/* A broker that refuses connections: mq keeps retrying with backoff and the loop keeps running. */

static int ticks;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	ticks++;
}

static void test_unreachable(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval every = { 0, 10000 };
	struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	struct mq_message m = { .exchange = "", .routing_key = Q_BULK, .body = "u", .body_len = 1 };
	struct mq_opts o = { .name = "test-mq unreachable" };
	char *dead_url;
	struct mq *mq;
	bool never = false;

	/* A port that was free a moment ago and has no listener now. */
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);
	dead_url = xasprintf("amqp://guest:guest@127.0.0.1:%u/" VHOST, ntohs(sa.sin_port));
	o.url = dead_url;
	mq = mq_new(base, &o);
	event_add(tick, &every);
	testenv_run_until(base, &never, 1500);
	CHECK(!mq_ready(mq), "an mq whose broker refuses connections is not ready");
	CHECK_INT(mq_publish(mq, &m, NULL, NULL), -1, "and publishing on it fails at once");
	CHECK(ticks >= 100, "the loop kept running while it retried (%d ticks of 10 ms in 1.5 s)", ticks);
	mq_free(mq);
	event_free(tick);
	free(dead_url);
}

/*
 * Several brokers (AMQP_URL as a list). The "second broker" is a TCP proxy
 * in front of the run's RabbitMQ on a port of its own: stopping it is the
 * broker going away as the client sees it (its sockets close), and freezing
 * it first holds a publish unconfirmed at the moment of the loss. A port
 * nobody listens on stands for a broker that is down.
 */

#define PROXY_PAIRS 16
#define Q_FAILOVER "test.failover"
#define Q_RPC "test.rpc"

struct proxy {
	int listen_fd;
	int port;
	int target_port;
	pthread_t thread;
	atomic_bool frozen;	/* relay nothing (both directions) */
	atomic_bool stop;	/* close every socket and end */
	atomic_int accepted;
};

static void proxy_close_pair(int *a, int *b, int *n, int i)
{
	close(a[i]);
	close(b[i]);
	a[i] = a[*n - 1];
	b[i] = b[*n - 1];
	(*n)--;
}

/* Copy what fd has to out; false when fd is finished. */
static bool proxy_relay(int fd, int out)
{
	char buf[65536];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n <= 0)
		return false;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(out, buf + off, (size_t)(n - off));

		if (w <= 0)
			return false;
		off += w;
	}
	return true;
}

static void *proxy_run(void *arg)
{
	struct proxy *p = arg;
	int a[PROXY_PAIRS], b[PROXY_PAIRS], n = 0;

	while (!atomic_load(&p->stop)) {
		struct pollfd pfd[1 + 2 * PROXY_PAIRS];
		int polled = atomic_load(&p->frozen) ? 0 : n;	/* pairs 0..polled-1 are at pfd[1 + 2i] */

		pfd[0] = (struct pollfd){ .fd = p->listen_fd, .events = POLLIN };
		for (int i = 0; i < polled; i++) {
			pfd[1 + 2 * i] = (struct pollfd){ .fd = a[i], .events = POLLIN };
			pfd[2 + 2 * i] = (struct pollfd){ .fd = b[i], .events = POLLIN };
		}
		if (poll(pfd, (nfds_t)(1 + 2 * polled), 50) <= 0)
			continue;
		/* Backwards, so closing pair i (the last one moves into its place) leaves the rest in step. */
		for (int i = polled - 1; i >= 0; i--) {
			short ra = pfd[1 + 2 * i].revents, rb = pfd[2 + 2 * i].revents;
			bool ok = true;

			if (ra & (POLLIN | POLLHUP | POLLERR))
				ok = proxy_relay(a[i], b[i]);
			if (ok && (rb & (POLLIN | POLLHUP | POLLERR)))
				ok = proxy_relay(b[i], a[i]);
			if (!ok)
				proxy_close_pair(a, b, &n, i);
		}
		if ((pfd[0].revents & POLLIN) && n < PROXY_PAIRS) {
			struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
						  .sin_port = htons((uint16_t)p->target_port) };
			int c = accept(p->listen_fd, NULL, NULL);
			int s = socket(AF_INET, SOCK_STREAM, 0);

			if (c >= 0 && s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
				a[n] = c;
				b[n] = s;
				n++;
				atomic_fetch_add(&p->accepted, 1);
			} else {
				if (c >= 0)
					close(c);
				if (s >= 0)
					close(s);
			}
		}
	}
	while (n > 0)
		proxy_close_pair(a, b, &n, n - 1);
	close(p->listen_fd);
	return NULL;
}

static struct proxy *proxy_start(int target_port)
{
	struct proxy *p = xcalloc(1, sizeof(*p));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int one = 1;

	p->target_port = target_port;
	p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(p->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(p->listen_fd, 16) < 0 ||
	    getsockname(p->listen_fd, (struct sockaddr *)&sa, &len) < 0) {
		perror("proxy");
		exit(1);
	}
	p->port = ntohs(sa.sin_port);
	atomic_init(&p->frozen, false);
	atomic_init(&p->stop, false);
	pthread_create(&p->thread, NULL, proxy_run, p);
	return p;
}

/* The broker goes away: every connection through the proxy closes, and the port refuses new ones. */
static void proxy_stop(struct proxy *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	free(p);
}

/* url (the run's broker) with another port. */
static char *url_on_port(const char *u, int port)
{
	const char *at = strrchr(u, '@');
	const char *colon = strchr(at, ':');
	const char *slash = strchr(colon, '/');

	return xasprintf("%.*s%d%s", (int)(colon + 1 - u), u, port, slash);
}

static int url_port(const char *u)
{
	return atoi(strchr(strrchr(u, '@'), ':') + 1);
}

/* A port that was free a moment ago and has no listener now. */
static int dead_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);
	return ntohs(sa.sin_port);
}

static struct {
	struct mq *mq;
	int connects;
	int disconnects;
	size_t broker_at_connect[8];
	int got;
	char *last_id;
} fo;

static void on_failover_delivery(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	(void)arg;
	fo.got++;
	free(fo.last_id);
	fo.last_id = dup_or_null(d->msg.message_id);
	mq_ack(mq, d->token);
}

static int on_failover_connect(struct mq *mq, void *arg)
{
	(void)arg;
	if (fo.connects < 8)
		fo.broker_at_connect[fo.connects] = mq_broker(mq);
	fo.connects++;
	if (mq_declare_queue(mq, Q_FAILOVER, NULL, 0) < 0 ||
	    mq_consume(mq, Q_FAILOVER, 10, false, on_failover_delivery, NULL) < 0)
		return -1;
	return 0;
}

static void on_failover_disconnect(struct mq *mq, void *arg)
{
	(void)mq;
	(void)arg;
	fo.disconnects++;
}

static bool fo_ready(void)
{
	return mq_ready(fo.mq);
}

static bool fo_reconnected(void)
{
	return fo.connects >= 2 && mq_ready(fo.mq);
}

static bool fo_third(void)
{
	return fo.connects >= 3 && mq_ready(fo.mq);
}

static int fo_want_got;

static bool fo_received(void)
{
	return fo.got >= fo_want_got;
}

static struct tally fo_first, fo_held, fo_again;

static bool fo_held_settled(void)
{
	return fo_held.done;
}

static bool fo_again_settled(void)
{
	return fo_again.done;
}

static bool fo_first_settled(void)
{
	return fo_first.done;
}

static void test_failover(void)
{
	struct proxy *second = proxy_start(url_port(url));
	char *down = url_on_port(url, dead_port());
	char *via = url_on_port(url, second->port);
	char *list = xasprintf("%s , %s,\t%s", down, via, url);
	struct mq_opts o = { .url = list, .name = "test-mq failover", .on_connect = on_failover_connect,
			     .on_disconnect = on_failover_disconnect };
	struct mq_message m1 = { .exchange = "", .routing_key = Q_FAILOVER, .body = "1", .body_len = 1,
				 .message_id = "fo-1" };
	struct mq_message m2 = { .exchange = "", .routing_key = Q_FAILOVER, .body = "2", .body_len = 1,
				 .message_id = "fo-2" };
	int64_t t0 = now_ms(), lost_at;
	bool never = false;

	/* (a) The first URL refuses: the second answers, at once (no backoff within the first round). */
	fo.mq = mq_new(base, &o);
	CHECK(wait_for(fo_ready, 10000), "a list whose first broker is down connects to the next one");
	CHECK(now_ms() - t0 < 3000, "... without waiting out a backoff first (%lld ms)", (long long)(now_ms() - t0));
	CHECK_INT(fo.connects, 1, "on_connect ran once");
	CHECK_INT(mq_broker(fo.mq), 1, "on the second URL of the list");
	CHECK_INT(atomic_load(&second->accepted), 1, "the connection goes through the second broker");
	CHECK_INT(publish(fo.mq, &m1, &fo_first), 0, "published through the second broker");
	fo_want_got = 1;
	CHECK(wait_for(fo_first_settled, 10000) && fo_first.ack == 1, "confirmed");
	CHECK(wait_for(fo_received, 10000), "and consumed there");

	/* (b)+(c) The broker goes away with a publish unconfirmed. */
	atomic_store(&second->frozen, true);
	testenv_run_until(base, &never, 200);
	CHECK_INT(publish(fo.mq, &m2, &fo_held), 0, "a publish while the broker is silent");
	testenv_run_until(base, &never, 300);
	CHECK_INT(mq_unconfirmed(fo.mq), 1, "stays unconfirmed");
	CHECK(!fo_held.done, "... and unsettled");
	lost_at = now_ms();
	proxy_stop(second);
	CHECK(wait_for(fo_held_settled, 5000), "when the broker goes away the unconfirmed publish is settled");
	CHECK_INT(fo_held.lost, 1, "... as LOST (confirms belong to the old connection; mq does not republish)");
	CHECK(now_ms() - lost_at < 3000, "... promptly (%lld ms), not after the confirm timeout",
	      (long long)(now_ms() - lost_at));
	CHECK_INT(fo.disconnects, 1, "on_disconnect ran once");
	CHECK(wait_for(fo_reconnected, 15000), "the connection moved on");
	CHECK_INT(mq_broker(fo.mq), 2, "to the next URL of the list");
	CHECK_INT(fo.connects, 2, "on_connect ran there (topology and consumers again)");
	CHECK_INT(publish(fo.mq, &m2, &fo_again), 0, "the caller publishes the lost message again");
	CHECK(wait_for(fo_again_settled, 10000) && fo_again.ack == 1, "it is confirmed on the new broker");
	fo_want_got = 2;
	CHECK(wait_for(fo_received, 10000), "and the consumer, back on the new broker, receives it");
	CHECK_STR(fo.last_id, "fo-2", "the republished message");

	/* Round robin: lost again, the next attempts go to the first URL, then on through the list. */
	CHECK(kill_connection("test-mq failover"), "the management API closed the connection");
	CHECK(wait_for(fo_third, 20000), "it reconnected");
	CHECK_INT(fo.disconnects, 2, "on_disconnect ran again");
	CHECK_INT(mq_broker(fo.mq), 2, "past the two brokers that are down, to the only one up");
	CHECK_INT(fo.connects, 3, "on_connect ran once per connection, not per attempt");
	CHECK(fo.broker_at_connect[0] == 1 && fo.broker_at_connect[1] == 2 && fo.broker_at_connect[2] == 2,
	      "mq_broker() inside on_connect names the broker being set up");

	mq_free(fo.mq);
	fo.mq = NULL;
	free(fo.last_id);
	free(list);
	free(via);
	free(down);
}

/* The gateway's bridge: its reply queue moves with the connection; RPCs whose replies cannot come are told so. */

static struct {
	struct mq *mq;		/* the responder, on the run's broker */
	int requests;
	char *held_reply_to;
} rsp;

static struct {
	int replies;
	char *last_correlation;
	int lost;
} br;

static void on_rpc_request(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	struct mq_message reply = { .exchange = "", .body = "{}", .body_len = 2, .transient = true };

	(void)arg;
	rsp.requests++;
	if (d->msg.body_len == 4 && memcmp(d->msg.body, "hold", 4) == 0) {
		free(rsp.held_reply_to);
		rsp.held_reply_to = dup_or_null(d->msg.reply_to);
	} else if (d->msg.reply_to != NULL) {
		reply.routing_key = d->msg.reply_to;
		reply.correlation_id = d->msg.correlation_id;
		mq_publish(mq, &reply, NULL, NULL);
	}
	mq_ack(mq, d->token);
}

static int on_responder_connect(struct mq *mq, void *arg)
{
	(void)arg;
	if (mq_declare_queue(mq, Q_RPC, NULL, 0) < 0 || mq_consume(mq, Q_RPC, 10, false, on_rpc_request, NULL) < 0)
		return -1;
	return 0;
}

static int on_bridge_declare(struct mq *mq)
{
	return mq_declare_queue(mq, Q_RPC, NULL, 0);
}

static void on_bridge_reply(const struct mq_delivery *d, void *arg)
{
	(void)arg;
	br.replies++;
	free(br.last_correlation);
	br.last_correlation = dup_or_null(d->msg.correlation_id);
}

static void on_bridge_lost(void *arg)
{
	(void)arg;
	br.lost++;
}

static struct mqbridge *bridge;
static struct tally rpc1, rpc2, rpc3;
static int br_want_replies;

static bool bridge_ready(void)
{
	return mqbridge_ready(bridge) && mq_ready(rsp.mq);
}

static bool bridge_replied(void)
{
	return br.replies >= br_want_replies;
}

static bool rpc2_confirmed(void)
{
	return rpc2.done && rsp.requests >= 2;
}

static bool bridge_lost(void)
{
	return br.lost >= 1;
}

static bool bridge_back(void)
{
	return mqbridge_ready(bridge);
}

static void test_bridge_failover(void)
{
	struct proxy *first = proxy_start(url_port(url));
	char *via = url_on_port(url, first->port);
	char *list = xasprintf("%s,%s", via, url);
	struct mq_opts o = { .url = url, .name = "test-mq responder", .on_connect = on_responder_connect };
	struct mq_message m = { .exchange = "", .routing_key = Q_RPC, .body = "go", .body_len = 2,
				.message_id = "rpc-1", .correlation_id = "rpc-1" };
	int64_t lost_at;

	rsp.mq = mq_new(base, &o);
	bridge = mqbridge_new(base, list, "test-mq bridge", on_bridge_declare, on_bridge_reply, on_bridge_lost, NULL);
	CHECK(wait_for(bridge_ready, 10000), "the bridge connected through the first broker of its list");
	CHECK_INT(atomic_load(&first->accepted), 1, "... the proxy in front of it");
	CHECK_INT(mqbridge_publish(bridge, &m, true, on_confirm, &rpc1), 0, "an RPC is sent");
	br_want_replies = 1;
	CHECK(wait_for(bridge_replied, 10000), "and its reply arrives");
	CHECK_STR(br.last_correlation, "rpc-1", "matched by correlation id");

	m.body = "hold";
	m.body_len = 4;
	m.message_id = m.correlation_id = "rpc-2";
	CHECK_INT(mqbridge_publish(bridge, &m, true, on_confirm, &rpc2), 0, "an RPC the responder does not answer yet");
	CHECK(wait_for(rpc2_confirmed, 10000) && rpc2.ack == 1, "is confirmed and received");
	lost_at = now_ms();
	proxy_stop(first);
	CHECK(wait_for(bridge_lost, 5000), "when the broker goes away the caller hears the replies are lost");
	CHECK(now_ms() - lost_at < 3000, "... promptly (%lld ms)", (long long)(now_ms() - lost_at));
	CHECK_INT(br.lost, 1, "once");
	CHECK(wait_for(bridge_back, 15000), "the bridge reconnected to the next broker");
	m.body = "go";
	m.body_len = 2;
	m.message_id = m.correlation_id = "rpc-3";
	CHECK_INT(mqbridge_publish(bridge, &m, true, on_confirm, &rpc3), 0, "an RPC after the failover");
	br_want_replies = 2;
	CHECK(wait_for(bridge_replied, 10000), "its reply reaches the bridge's new reply queue");
	CHECK_STR(br.last_correlation, "rpc-3", "matched by correlation id");
	CHECK(rsp.held_reply_to != NULL && strncmp(rsp.held_reply_to, "amq.gen-", 8) == 0,
	      "the held RPC named the old reply queue (%s)", rsp.held_reply_to);

	mqbridge_free(bridge);
	bridge = NULL;
	mq_free(rsp.mq);
	free(rsp.held_reply_to);
	free(br.last_correlation);
	free(list);
	free(via);
}

/* mq_free with a publish in flight reports it lost, exactly once. */

static struct tally freed;

static void test_free_lost(void)
{
	struct mq_message m = { .exchange = "", .routing_key = Q_BULK, .body = "f", .body_len = 1,
				.message_id = "freed-1" };

	CHECK_INT(publish(pub.mq, &m, &freed), 0, "published just before mq_free");
	mq_free(pub.mq);
	pub.mq = NULL;
	CHECK_INT(freed.lost, 1, "mq_free reported the unsettled publish as LOST");
	CHECK_INT(freed.ack + freed.nack + freed.returned, 0, "... and nothing else");
}

/* Broker users: lib/topology's grants, as deploy/ makes them, on this test's vhost. */

static const struct topology_grant *grant_of(const struct topology_grant *g, size_t n, const char *role)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(g[i].role, role) == 0)
			return &g[i];
	return NULL;
}

/* A user "test-mq-<role>" with role's grant on VHOST; its AMQP URL, caller frees. */
static char *grant_user(const struct topology_grant *g)
{
	char *user = xasprintf("test-mq-%s", g->role);
	char *u = testenv_broker_user(VHOST, user, "test-mq-password", g->configure, g->write, g->read);

	free(user);
	return u;
}

struct role_side {
	const char *role;
	int connects;
	const char *reply_queue;
};

static void on_reply(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	(void)mq;
	(void)d;
	(void)arg;
}

static void on_ignore(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	(void)arg;
	mq_nack(mq, d->token, true);
}

/* What each service does in on_connect, under its own broker user. */
static int on_role_connect(struct mq *mq, void *arg)
{
	struct role_side *r = arg;

	r->connects++;
	if (strcmp(r->role, "gateway") == 0)
		return topology_declare_gateway(mq) < 0 || mq_declare_reply_queue(mq, &r->reply_queue) < 0 ||
				       mq_consume(mq, r->reply_queue, 16, true, on_reply, NULL) < 0
			       ? -1
			       : 0;
	if (strcmp(r->role, "scheduler") == 0)
		return topology_declare_scheduler(mq, DELAY_MS) < 0 ||
				       mq_consume(mq, TOPO_Q_SCHEDULER_LEADS, 1, false, on_ignore, NULL) < 0 ||
				       mq_consume(mq, TOPO_Q_SCHEDULER_COMMANDS, 1, false, on_ignore, NULL) < 0
			       ? -1
			       : 0;
	if (strcmp(r->role, "mailer") == 0)
		return topology_declare_mailer(mq) < 0 || mq_consume(mq, TOPO_Q_MAILER_JOBS, 1, false, on_ignore, NULL) < 0
			       ? -1
			       : 0;
	if (strcmp(r->role, "webhook") == 0)
		return topology_declare_webhook_side(mq);
	return 0;
}

static struct mq *waiting_mq;

static bool role_ready(void)
{
	return mq_ready(waiting_mq);
}

static struct tally as_gateway, as_mailer;

static bool as_gateway_done(void)
{
	return as_gateway.done && commands.got > 0;
}

static bool as_mailer_settled(void)
{
	return as_mailer.done;
}

/* A raw connection (librabbitmq, not lib/mq, which cannot forge): publish with user-id claimed; the broker's answer. */
static void forged_publish(const char *user, const char *claimed, char *text, size_t len)
{
	amqp_connection_state_t conn = amqp_new_connection();
	amqp_socket_t *sock = amqp_tcp_socket_new(conn);
	struct amqp_connection_info info;
	char *u = testenv_broker_user(VHOST, user, "test-mq-password", "^$", "^calendar\\.commands$", "^$");
	amqp_basic_properties_t p = { 0 };
	amqp_rpc_reply_t r;

	amqp_parse_url(u, &info);
	snprintf(text, len, "no answer");
	if (amqp_socket_open(sock, info.host, info.port) != AMQP_STATUS_OK ||
	    amqp_login(conn, VHOST, 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN, user, "test-mq-password")
			    .reply_type != AMQP_RESPONSE_NORMAL ||
	    amqp_channel_open(conn, 1) == NULL)
		goto out;
	p._flags = AMQP_BASIC_USER_ID_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
	p.user_id = amqp_cstring_bytes(claimed);
	p.message_id = amqp_cstring_bytes("forged-1");
	amqp_basic_publish(conn, 1, amqp_cstring_bytes(TOPO_EX_CALENDAR_COMMANDS),
			   amqp_cstring_bytes(TOPO_RK_MEETING_CANCEL), 0, 0, &p, amqp_cstring_bytes("{}"));
	/* The broker answers a refused publish by closing the channel: any synchronous call then sees it. */
	amqp_queue_declare(conn, 1, amqp_cstring_bytes(TOPO_Q_SCHEDULER_COMMANDS), 1, 0, 0, 0, amqp_empty_table);
	r = amqp_get_rpc_reply(conn);
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_t *c = r.reply.decoded;

		snprintf(text, len, "%u %.*s", c->reply_code, (int)c->reply_text.len, (char *)c->reply_text.bytes);
	} else if (r.reply_type == AMQP_RESPONSE_NORMAL) {
		snprintf(text, len, "accepted");
	}
out:
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	free(u);
}

static void test_broker_users(void)
{
	static const char *const roles[] = { "gateway", "scheduler", "mailer", "webhook", "ops" };
	struct topology_grant *g;
	size_t n = topology_grants(&g);
	struct mq *mqs[5] = { 0 };
	struct role_side sides[5] = { 0 };
	struct mq_message cmd = { .exchange = TOPO_EX_CALENDAR_COMMANDS, .routing_key = TOPO_RK_MEETING_CANCEL,
				  .body = "{}", .body_len = 2, .message_id = "as-gateway-1", .mandatory = true };
	struct mq_message forged = cmd;
	char text[256];

	CHECK_INT(n, 5, "five broker users: gateway, scheduler, mailer, webhook, ops");
	/* Each service's declares and consumers pass under its own grant alone. */
	for (size_t i = 0; i < 5; i++) {
		const struct topology_grant *gr = grant_of(g, n, roles[i]);
		char *u = grant_user(gr);
		char *name = xasprintf("test-mq %s", roles[i]);
		struct mq_opts o = { .url = u, .name = name, .on_connect = on_role_connect, .arg = &sides[i] };

		sides[i].role = roles[i];
		mqs[i] = mq_new(base, &o);
		waiting_mq = mqs[i];
		CHECK(wait_for(role_ready, 10000), "the %s's declares and consumers pass under its grant alone", roles[i]);
		CHECK_INT(sides[i].connects, 1, "... at the first attempt (%s)", roles[i]);
		free(name);
		name = xasprintf("test-mq-%s", roles[i]);
		CHECK_STR(mq_user(mqs[i]), name, "mq_user() is the login (%s)", roles[i]);
		free(name);
		free(u);
		/* Only the gateway and the mailer are used below; the others' consumers would compete with ours. */
		if (i != 0 && i != 2) {
			mq_free(mqs[i]);
			mqs[i] = NULL;
		}
	}

	/* The gateway's command arrives naming the gateway's user. */
	CHECK_INT(publish(mqs[0], &cmd, &as_gateway), 0, "the gateway's user published a command");
	CHECK(wait_for(as_gateway_done, 10000), "it was confirmed and consumed");
	CHECK_INT(as_gateway.ack, 1, "the broker took it");
	CHECK_STR(commands.user_id, "test-mq-gateway", "its user-id names the gateway's broker user");

	/* The mailer's credentials cannot publish a command: the broker closes the channel (403). */
	forged.message_id = "as-mailer-1";
	commands.got = 0;
	CHECK_INT(publish(mqs[2], &forged, &as_mailer), 0, "the mailer's user wrote a publish to calendar.commands");
	CHECK(wait_for(as_mailer_settled, 10000), "it was settled");
	CHECK_INT(as_mailer.lost, 1, "the broker refused it: the channel closed and the publish is LOST");
	CHECK_INT(as_mailer.ack, 0, "... never acked");
	waiting_mq = mqs[2];
	CHECK(wait_for(role_ready, 10000), "the mailer's connection came back by itself");
	CHECK_INT(commands.got, 0, "nothing reached scheduler.commands");

	/* A user-id other than the login is refused too (406), even where the user may write. */
	forged_publish("test-mq-forger", "test-mq-gateway", text, sizeof(text));
	CHECK(strncmp(text, "406 PRECONDITION_FAILED", 23) == 0, "a forged user-id is refused by the broker (%s)", text);
	forged_publish("test-mq-forger", "test-mq-forger", text, sizeof(text));
	CHECK_STR(text, "accepted", "the same publish naming its own login is taken");
	CHECK(wait_for(as_gateway_done, 10000) && field_is(commands.user_id, "test-mq-forger"),
	      "and arrives naming it");

	for (size_t i = 0; i < 5; i++)
		mq_free(mqs[i]);
	topology_grants_free(g, n);
}

int main(void)
{
	struct mq_message m = { .exchange = "", .routing_key = Q_BULK, .body = "", .body_len = 0 };

	log_init("test_mq", LOG_INFO);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	url = testenv_vhost(VHOST);
	base = event_base_new();

	mq_free(NULL);
	check_tiers();
	pub.mq = side_new(&pub, CONN_PUB, on_pub_connect);
	con.mq = side_new(&con, CONN_CON, on_con_connect);
	CHECK(!mq_ready(pub.mq), "mq_new does not connect by itself");
	CHECK_INT(mq_publish(pub.mq, &m, NULL, NULL), -1, "publishing before the connection is up fails");

	CHECK(wait_for(both_ready, 20000), "publisher and consumer connected");
	CHECK(pub.connects == 1 && con.connects == 1, "on_connect ran once on each");
	check_topology();
	test_bulk();
	test_mandatory();
	test_dead_letter_and_delay();
	test_broker_users();
	test_reconnect();
	test_stop_consuming();
	test_nack_reconnects();
	test_precondition();
	test_unreachable();
	test_failover();
	test_bridge_failover();
	test_free_lost();

	mq_free(con.mq);
	event_base_free(base);
	free(url);
	free(delay.exchange);
	free(delay.routing_key);
	free(dead.reason);
	free(dead.queue);
	free(dead.routing_key);
	free(commands.user_id);
	free(commands.message_id);
	curl_global_cleanup();
	log_shutdown();
	return tap_done();
}
