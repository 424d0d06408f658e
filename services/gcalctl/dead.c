/*
 * dead: `gcalctl dead list` and `gcalctl dead replay`.
 *
 * Poison messages and exhausted retries park in scheduler.dead and
 * mailer.dead with x-dead-reason and x-dead-detail (docs/operations.md,
 * "Dead letters"); RabbitMQ's own dead-lettering (the delivery limit) leaves
 * x-death instead. Listing takes every message without acknowledging it
 * and closes the channel, so the queue is left as it was. Replaying sends a
 * copy back to the work queue it came from (scheduler.commands for meeting
 * commands, scheduler.leads for everything else of the scheduler's,
 * mailer.jobs for mail) with the retry count and the dead-letter headers
 * dropped, and acknowledges the dead letter only after the broker has
 * confirmed the copy: a crash in between leaves two copies, never none, and
 * the consumers are idempotent (leads by lead id, mails by message id).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "broker.h"
#include "gcalctl.h"
#include "log.h"
#include "topology.h"
#include "xmalloc.h"

/* Bytes of a body shown in the text listing; --json shows it whole. */
#define DEAD_BODY_SHOWN 300

struct dead_queue {
	const char *service;
	const char *queue;
};

static const struct dead_queue dead_queues[] = {
	{ "scheduler", TOPO_Q_SCHEDULER_DEAD },
	{ "mailer", TOPO_Q_MAILER_DEAD },
};

#define DEAD_NQUEUES (sizeof(dead_queues) / sizeof(*dead_queues))

/* "scheduler" or "scheduler.dead" (the same for the mailer); NULL for anything else. */
static const char *dead_lookup(const char *arg)
{
	for (size_t i = 0; i < DEAD_NQUEUES; i++)
		if (strcmp(arg, dead_queues[i].service) == 0 || strcmp(arg, dead_queues[i].queue) == 0)
			return dead_queues[i].queue;
	return NULL;
}

/* The work queue a dead letter came from, which is where a replay sends it. */
static const char *dead_target(const char *queue, const struct mq_message *m)
{
	if (strcmp(queue, TOPO_Q_MAILER_DEAD) == 0)
		return TOPO_Q_MAILER_JOBS;
	/* The gateway's commands carry this type; the scheduler also accepts them on its lead queue. */
	if (m->type != NULL && strcmp(m->type, "meeting.command") == 0)
		return TOPO_Q_SCHEDULER_COMMANDS;
	return TOPO_Q_SCHEDULER_LEADS;
}

static const char *dead_header(const struct mq_message *m, const char *key)
{
	for (size_t i = 0; i < m->nheaders; i++)
		if (strcmp(m->headers[i].key, key) == 0)
			return m->headers[i].value;
	return NULL;
}

/*
 * A replayed copy starts over: no retry count (lib/retry's x-attempt), no
 * verdict of its last life, nothing the broker counted. Everything else
 * (x-trace-id, the properties) is kept.
 */
static bool dead_keep_header(const char *key)
{
	static const char *const dropped[] = { "x-attempt", "x-delivery-count", "x-death" };
	static const char *const dropped_prefixes[] = { "x-dead-", "x-first-death-", "x-last-death-" };

	for (size_t i = 0; i < sizeof(dropped) / sizeof(*dropped); i++)
		if (strcmp(key, dropped[i]) == 0)
			return false;
	for (size_t i = 0; i < sizeof(dropped_prefixes) / sizeof(*dropped_prefixes); i++)
		if (strncmp(key, dropped_prefixes[i], strlen(dropped_prefixes[i])) == 0)
			return false;
	return true;
}

/* When the message was last handled: when RabbitMQ dead-lettered it, else when it was published; 0 unknown. */
static int64_t dead_since(const struct broker_message *bm)
{
	struct broker_death death;

	broker_message_death(bm, &death);
	return death.time != 0 ? death.time : broker_message_view(bm)->timestamp;
}

/*
 * The routing key the message had before it was parked (its copy in the
 * dead queue is routed by the queue's name): x-dead-from when a consumer
 * parked it, x-death's when RabbitMQ did.
 */
static const char *dead_routing_key(const struct broker_message *bm)
{
	const struct mq_message *m = broker_message_view(bm);
	const char *ours = dead_header(m, "x-dead-from");
	struct broker_death death;

	if (ours != NULL)
		return ours;
	broker_message_death(bm, &death);
	return death.routing_key != NULL ? death.routing_key : m->routing_key;
}

/* The reason as an operator reads it: ours when a consumer parked it, RabbitMQ's otherwise. */
static char *dead_reason(const struct broker_message *bm)
{
	const char *ours = dead_header(broker_message_view(bm), "x-dead-reason");
	struct broker_death death;

	if (ours != NULL)
		return xstrdup(ours);
	broker_message_death(bm, &death);
	if (death.reason != NULL)
		return xasprintf("%s (by RabbitMQ, from %s)", death.reason, death.queue ? death.queue : "?");
	return xstrdup("unknown");
}

/* Up to max bytes of a body on one line, anything that is not printable ASCII as '?'. The caller frees it. */
static char *dead_printable(const char *body, size_t len, size_t max)
{
	size_t n = len < max ? len : max;
	char *out = xmalloc(n + 4);

	for (size_t i = 0; i < n; i++)
		out[i] = body[i] >= 0x20 && body[i] < 0x7f ? body[i] : '?';
	strcpy(out + n, len > max ? "..." : "");
	return out;
}

static void dead_print(const char *queue, const struct broker_message *bm, time_t now)
{
	const struct mq_message *m = broker_message_view(bm);
	const char *detail = dead_header(m, "x-dead-detail");
	int64_t since = dead_since(bm);
	char *reason = dead_reason(bm);
	char *body = dead_printable(m->body, m->body_len, DEAD_BODY_SHOWN);
	char age[32] = "unknown";

	if (since != 0)
		cli_format_duration((int64_t)now - since, age, sizeof(age));
	printf("\n  message_id   %s\n", m->message_id ? m->message_id : "(none)");
	printf("  routing_key  %s\n", dead_routing_key(bm));
	if (m->type != NULL)
		printf("  type         %s\n", m->type);
	printf("  age          %s\n", age);
	printf("  reason       %s\n", reason);
	printf("  detail       %s\n", detail ? detail : "-");
	if (dead_header(m, "x-dead-publisher") != NULL)
		printf("  publisher    %s\n", dead_header(m, "x-dead-publisher"));
	printf("  replays to   %s\n", dead_target(queue, m));
	printf("  body         %s\n", body);
	free(reason);
	free(body);
}

static cJSON *dead_json(const char *queue, const struct broker_message *bm, time_t now)
{
	const struct mq_message *m = broker_message_view(bm);
	cJSON *o = cJSON_CreateObject(), *headers = cJSON_AddObjectToObject(o, "headers");
	cJSON *body = cJSON_ParseWithLength(m->body, m->body_len);
	int64_t since = dead_since(bm);
	char *reason = dead_reason(bm);

	cJSON_AddItemToObject(o, "message_id", m->message_id ? cJSON_CreateString(m->message_id) : cJSON_CreateNull());
	cJSON_AddStringToObject(o, "routing_key", dead_routing_key(bm));
	cJSON_AddStringToObject(o, "exchange", m->exchange);
	cJSON_AddItemToObject(o, "type", m->type ? cJSON_CreateString(m->type) : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "user_id", m->user_id ? cJSON_CreateString(m->user_id) : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "age_seconds", since ? cJSON_CreateNumber((double)(now - since)) : cJSON_CreateNull());
	cJSON_AddStringToObject(o, "reason", reason);
	cJSON_AddItemToObject(o, "detail", dead_header(m, "x-dead-detail") ?
				  cJSON_CreateString(dead_header(m, "x-dead-detail")) : cJSON_CreateNull());
	cJSON_AddStringToObject(o, "replays_to", dead_target(queue, m));
	for (size_t i = 0; i < m->nheaders; i++)
		cJSON_AddStringToObject(headers, m->headers[i].key, m->headers[i].value);
	if (body != NULL) {
		cJSON_AddItemToObject(o, "body", body);
	} else {
		char *text = dead_printable(m->body, m->body_len, m->body_len);

		cJSON_AddStringToObject(o, "body_text", text);
		free(text);
	}
	free(reason);
	return o;
}

/* Show one dead queue; with json, append its object to out instead. 0 or -1. */
static int dead_list_queue(struct broker *b, const char *queue, cJSON *out)
{
	long depth = broker_queue_depth(b, queue);
	time_t now = time(NULL);
	cJSON *q = NULL, *messages = NULL;
	int rc = 0;

	if (depth < 0)
		return -1;
	if (out != NULL) {
		q = cJSON_CreateObject();
		cJSON_AddStringToObject(q, "queue", queue);
		cJSON_AddNumberToObject(q, "depth", (double)depth);
		messages = cJSON_AddArrayToObject(q, "messages");
		cJSON_AddItemToArray(out, q);
	} else {
		printf("%s: %ld message%s\n", queue, depth, depth == 1 ? "" : "s");
	}
	/* The depth bounds the loop: a message taken is held, never handed out twice. */
	for (long i = 0; i < depth; i++) {
		struct broker_message *bm = NULL;
		int got = broker_get(b, queue, &bm);

		if (got <= 0) {
			rc = got;
			break;
		}
		if (out != NULL)
			cJSON_AddItemToArray(messages, dead_json(queue, bm, now));
		else
			dead_print(queue, bm, now);
		broker_message_free(bm);
	}
	if (out == NULL)
		printf("\n");
	return rc;
}

static int dead_list(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	const char *only = NULL;
	struct config cfg = { 0 };
	struct broker *b;
	cJSON *json = NULL;
	int c, failed = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j') {
			cJSON_Delete(json);
			return cli_usage();
		}
		if (json == NULL)
			json = cJSON_CreateArray();
	}
	if (optind < argc) {
		only = dead_lookup(argv[optind]);
		if (only == NULL || optind + 1 < argc) {
			cJSON_Delete(json);
			return cli_usage();
		}
	}
	cli_config(&cfg, CFG_AMQP);
	b = broker_open(cfg.amqp_url);
	if (b == NULL) {
		cJSON_Delete(json);
		cfg_free(&cfg);
		return GCALCTL_EXIT_FAILED;
	}
	for (size_t i = 0; i < DEAD_NQUEUES; i++)
		if (only == NULL || strcmp(only, dead_queues[i].queue) == 0)
			failed |= dead_list_queue(b, dead_queues[i].queue, json) < 0;
	broker_close(b);
	if (json != NULL) {
		cJSON *top = cJSON_CreateObject();
		char *text;

		cJSON_AddItemToObject(top, "queues", json);
		text = cJSON_Print(top);
		printf("%s\n", text);
		cJSON_free(text);
		cJSON_Delete(top);
	}
	cfg_free(&cfg);
	return failed ? GCALCTL_EXIT_FAILED : 0;
}

/* Replay what matches (every message, or those with message id `id`); counts into *replayed. 0 or -1. */
static int dead_replay_queue(struct broker *b, const char *queue, const char *id, long *replayed)
{
	long depth = broker_queue_depth(b, queue);

	if (depth < 0)
		return -1;
	for (long i = 0; i < depth; i++) {
		struct broker_message *bm = NULL;
		const struct mq_message *m;
		const char *target;
		int got = broker_get(b, queue, &bm);

		if (got <= 0)
			return got;
		m = broker_message_view(bm);
		/* One that does not match stays unacknowledged and returns to the dead queue when we close. */
		if (id != NULL && (m->message_id == NULL || strcmp(m->message_id, id) != 0)) {
			broker_message_free(bm);
			continue;
		}
		target = dead_target(queue, m);
		if (strcmp(target, TOPO_Q_SCHEDULER_COMMANDS) == 0)
			log_warn("the scheduler takes a replayed meeting command only when COMMAND_AMQP_USERS names this "
				 "broker user; otherwise it parks it again as untrusted_publisher",
				 LOG_STR("message_id", m->message_id), LOG_STR("broker_user", broker_user(b)));
		if (broker_republish(b, bm, target, dead_keep_header) < 0 || broker_ack(b, bm) < 0) {
			broker_message_free(bm);
			return -1;
		}
		printf("replayed %s to %s\n", m->message_id ? m->message_id : "(no message id)", target);
		(*replayed)++;
		broker_message_free(bm);
	}
	return 0;
}

static int dead_replay(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "all", no_argument, NULL, 'a' },
		{ 0 },
	};
	const char *queue, *id = NULL;
	bool all = false;
	struct config cfg = { 0 };
	struct broker *b;
	long replayed = 0;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'i')
			id = optarg;
		else if (c == 'a')
			all = true;
		else
			return cli_usage();
	}
	if (optind + 1 != argc || (id == NULL) == !all)
		return cli_usage();
	queue = dead_lookup(argv[optind]);
	if (queue == NULL)
		return cli_usage();
	cli_config(&cfg, CFG_AMQP);
	b = broker_open(cfg.amqp_url);
	if (b == NULL) {
		cfg_free(&cfg);
		return GCALCTL_EXIT_FAILED;
	}
	rc = dead_replay_queue(b, queue, id, &replayed);
	broker_close(b);
	cfg_free(&cfg);
	if (rc < 0)
		return GCALCTL_EXIT_FAILED;
	if (id != NULL && replayed == 0) {
		log_error("no dead letter with this message id", LOG_STR("queue", queue), LOG_STR("message_id", id));
		return GCALCTL_EXIT_FAILED;
	}
	printf("%ld message%s replayed from %s\n", replayed, replayed == 1 ? "" : "s", queue);
	return 0;
}

int dead_main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return dead_list(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "replay") == 0)
		return dead_replay(argc - 1, argv + 1);
	return cli_usage();
}
