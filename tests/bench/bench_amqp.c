/*
 * bench-amqp: the broker side of tests/bench, on librabbitmq directly.
 *
 *   bench-amqp publish URL [RATE]   lead.analyzed for each "lead user" line
 *                                   of stdin, persistent, with publisher
 *                                   confirms; prints "lead publish_ms" per
 *                                   message once the broker confirmed it.
 *                                   RATE (messages/s) paces the publishes;
 *                                   0 or absent: as fast as confirms allow.
 *   bench-amqp drain URL QUEUE N    consume N messages from QUEUE with one
 *                                   ack each; prints the seconds it took.
 *   bench-amqp ceiling URL N        the machine's ceiling for the same work
 *                                   without the services: N messages of the
 *                                   same size through a quorum queue like
 *                                   scheduler.leads, published with confirms
 *                                   and consumed with one ack each, on two
 *                                   connections; prints one JSON object.
 *
 * A benchmark tool, not a service: it blocks, and exits 1 on any error.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#define BENCH_WINDOW 512	/* unconfirmed publishes in flight */
#define BENCH_PREFETCH 256
#define BENCH_QUEUE "bench.ceiling"

static int64_t bench_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double bench_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_check(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		fprintf(stderr, "bench-amqp: %s failed (reply type %d)\n", what, (int)r.reply_type);
		exit(1);
	}
}

static amqp_connection_state_t bench_connect(const char *url_text)
{
	char *url = strdup(url_text);
	struct amqp_connection_info info;
	amqp_connection_state_t conn = amqp_new_connection();
	amqp_socket_t *sock = amqp_tcp_socket_new(conn);

	if (url == NULL || amqp_parse_url(url, &info) != AMQP_STATUS_OK || sock == NULL ||
	    amqp_socket_open(sock, info.host, info.port) != AMQP_STATUS_OK) {
		fprintf(stderr, "bench-amqp: cannot connect to the broker\n");
		exit(1);
	}
	bench_check(amqp_login(conn, info.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, info.user, info.password),
		    "login");
	amqp_channel_open(conn, 1);
	bench_check(amqp_get_rpc_reply(conn), "channel.open");
	free(url);
	return conn;
}

/* Wait for confirms until at most left publishes are unconfirmed; returns the highest tag confirmed. */
static uint64_t bench_wait_confirms(amqp_connection_state_t conn, uint64_t sent, uint64_t confirmed, uint64_t left)
{
	while (sent - confirmed > left) {
		amqp_frame_t f;

		if (amqp_simple_wait_frame(conn, &f) != AMQP_STATUS_OK) {
			fprintf(stderr, "bench-amqp: connection lost while waiting for confirms\n");
			exit(1);
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
			amqp_basic_ack_t *ack = f.payload.method.decoded;

			confirmed = ack->delivery_tag > confirmed ? ack->delivery_tag : confirmed;
		} else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
			fprintf(stderr, "bench-amqp: the broker refused a message\n");
			exit(1);
		}
	}
	return confirmed;
}

static void bench_publish_one(amqp_connection_state_t conn, const char *exchange, const char *key,
			      const char *id, const char *body)
{
	amqp_basic_properties_t p = { 0 };

	p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
	p.delivery_mode = 2;
	p.content_type = amqp_cstring_bytes("application/json");
	p.message_id = amqp_cstring_bytes(id);
	if (amqp_basic_publish(conn, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), 0, 0, &p,
			       amqp_cstring_bytes(body)) != AMQP_STATUS_OK) {
		fprintf(stderr, "bench-amqp: publish failed\n");
		exit(1);
	}
}

static int bench_publish(const char *url, double rate)
{
	amqp_connection_state_t conn = bench_connect(url);
	char line[256], lead[64], user[64], body[256], id[96];
	uint64_t sent = 0, confirmed = 0;
	/* Confirmed in order of tags: print a message's line once its tag is confirmed. */
	char (*pending)[64] = calloc(BENCH_WINDOW + 1, 64);
	int64_t *stamps = calloc(BENCH_WINDOW + 1, sizeof(*stamps));
	uint64_t printed = 0;
	double start = bench_mono_s();

	amqp_confirm_select(conn, 1);
	bench_check(amqp_get_rpc_reply(conn), "confirm.select");
	while (fgets(line, sizeof(line), stdin) != NULL) {
		if (sscanf(line, "%63s %63s", lead, user) != 2)
			continue;
		if (rate > 0) {
			double due = start + (double)sent / rate;
			double now = bench_mono_s();

			if (due > now) {
				struct timespec ts = { (time_t)(due - now), (long)((due - now - (double)(time_t)(due - now)) * 1e9) };

				nanosleep(&ts, NULL);
			}
		}
		snprintf(body, sizeof(body), "{\"lead_analytics_id\":\"%s\",\"user_id\":\"%s\"}", lead, user);
		snprintf(id, sizeof(id), "bench-%s", lead);
		bench_publish_one(conn, "leads", "lead.analyzed", id, body);
		snprintf(pending[sent % (BENCH_WINDOW + 1)], 64, "%s", lead);
		stamps[sent % (BENCH_WINDOW + 1)] = bench_now_ms();
		sent++;
		confirmed = bench_wait_confirms(conn, sent, confirmed, rate > 0 ? 0 : BENCH_WINDOW - 1);
		for (; printed < confirmed; printed++)
			printf("%s %lld\n", pending[printed % (BENCH_WINDOW + 1)],
			       (long long)stamps[printed % (BENCH_WINDOW + 1)]);
	}
	confirmed = bench_wait_confirms(conn, sent, confirmed, 0);
	for (; printed < confirmed; printed++)
		printf("%s %lld\n", pending[printed % (BENCH_WINDOW + 1)], (long long)stamps[printed % (BENCH_WINDOW + 1)]);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	free(pending);
	free(stamps);
	return 0;
}

struct bench_consumer {
	const char *url;
	const char *queue;
	long n;
	double done_at;
};

static void *bench_consume(void *arg)
{
	struct bench_consumer *c = arg;
	amqp_connection_state_t conn = bench_connect(c->url);

	amqp_basic_qos(conn, 1, 0, BENCH_PREFETCH, 0);
	amqp_basic_consume(conn, 1, amqp_cstring_bytes(c->queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	bench_check(amqp_get_rpc_reply(conn), "basic.consume");
	for (long got = 0; got < c->n; got++) {
		amqp_envelope_t env;

		amqp_maybe_release_buffers(conn);
		bench_check(amqp_consume_message(conn, &env, NULL, 0), "consume");
		amqp_basic_ack(conn, 1, env.delivery_tag, 0);
		amqp_destroy_envelope(&env);
	}
	c->done_at = bench_mono_s();
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	return NULL;
}

static int bench_ceiling(const char *url, long n)
{
	amqp_connection_state_t conn = bench_connect(url);
	amqp_table_entry_t qargs[] = { { amqp_cstring_bytes("x-queue-type"),
					 { AMQP_FIELD_KIND_UTF8, { .bytes = amqp_cstring_bytes("quorum") } } } };
	amqp_table_t args = { 1, qargs };
	struct bench_consumer c = { url, BENCH_QUEUE, n, 0 };
	pthread_t consumer;
	uint64_t sent = 0, confirmed = 0;
	char body[256], id[96];
	double start;

	amqp_queue_delete(conn, 1, amqp_cstring_bytes(BENCH_QUEUE), 0, 0);
	amqp_get_rpc_reply(conn);
	amqp_queue_declare(conn, 1, amqp_cstring_bytes(BENCH_QUEUE), 0, 1, 0, 0, args);
	bench_check(amqp_get_rpc_reply(conn), "queue.declare");
	amqp_confirm_select(conn, 1);
	bench_check(amqp_get_rpc_reply(conn), "confirm.select");
	pthread_create(&consumer, NULL, bench_consume, &c);
	start = bench_mono_s();
	for (long i = 0; i < n; i++) {
		/* The same size as a lead.analyzed body with two UUIDs. */
		snprintf(body, sizeof(body),
			 "{\"lead_analytics_id\":\"%08lx-0000-4000-8000-000000000000\",\"user_id\":\"%08lx-0000-4000-8000-"
			 "000000000001\"}", i, i);
		snprintf(id, sizeof(id), "ceiling-%ld", i);
		bench_publish_one(conn, "", BENCH_QUEUE, id, body);
		sent++;
		confirmed = bench_wait_confirms(conn, sent, confirmed, BENCH_WINDOW - 1);
	}
	bench_wait_confirms(conn, sent, confirmed, 0);
	pthread_join(consumer, NULL);
	printf("{\"messages\": %ld, \"seconds\": %.3f, \"per_second\": %.1f}\n", n, c.done_at - start,
	       (double)n / (c.done_at - start));
	amqp_queue_delete(conn, 1, amqp_cstring_bytes(BENCH_QUEUE), 0, 0);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	return 0;
}

/* Consume n messages from queue with one ack each; prints the seconds from start to the last. */
static int bench_drain(const char *url, const char *queue, long n)
{
	struct bench_consumer c = { url, queue, n, 0 };
	double start = bench_mono_s();

	bench_consume(&c);
	printf("{\"messages\": %ld, \"seconds\": %.3f}\n", n, c.done_at - start);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "publish") == 0)
		return bench_publish(argv[2], argc > 3 ? atof(argv[3]) : 0);
	if (argc == 4 && strcmp(argv[1], "ceiling") == 0)
		return bench_ceiling(argv[2], atol(argv[3]));
	if (argc == 5 && strcmp(argv[1], "drain") == 0)
		return bench_drain(argv[2], argv[3], atol(argv[4]));
	fprintf(stderr, "usage: bench-amqp publish URL [RATE] < leads | ceiling URL N | drain URL QUEUE N\n");
	return 2;
}
