/*
 * webhook: POST /webhooks/google/calendar, where Google pushes news of a
 * watched calendar (docs/sync.md).
 *
 * A push carries no body and no JWT: only Google's X-Goog-* headers. It
 * names a channel the scheduler opened (calendar_watch_channels), the token
 * the scheduler gave that channel, and the calendar's resource id. Anyone
 * can reach this URL, so a push counts only when its channel is one of ours
 * and still open (opening or live), the SHA-256 of its token equals the
 * stored hash (compared in constant time; the token itself is never stored
 * or logged) and its resource id is the one Google gave the channel. A
 * channel still `opening` has no resource id yet, since Google's first
 * `sync` message may overtake its answer to events.watch: the token alone
 * vouches for it then. An unknown, stopped or failed channel answers 404:
 * nobody listens for it here any more, and Google lets it expire.
 *
 * A push says only "something changed": it becomes calendar.changed
 * {user_id, channel_id, message_number} on the `calendar` exchange
 * (proto/messages/calendar.changed.schema.json), persistent and mandatory,
 * message id "<channel>:<number>" so a push Google repeats is the same
 * message, and the answer is 200 once the broker has confirmed it. Google
 * retries what is not answered 2xx, so whenever the database or the broker
 * cannot take a push the answer is 503 and Google sends it again. The
 * `sync` message that opens every channel is acknowledged and nothing is
 * published. One read and one publish per push: Google wants a quick
 * answer.
 *
 * Every push counts in gateway_webhook_notifications_total{result}.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <sodium.h>

#include "db.h"
#include "gateway.h"
#include "http.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "mqbridge.h"
#include "topology.h"
#include "xmalloc.h"

/* The largest message number the message carries exactly (a JSON number is a double). */
#define WEBHOOK_MAX_MESSAGE_NUMBER 9007199254740991LL

static const char webhook_channel_sql[] =
	"SELECT user_id, encode(token_hash, 'hex'), resource_id, status FROM calendar_watch_channels WHERE id = $1";

enum { CH_USER, CH_TOKEN_HASH, CH_RESOURCE, CH_STATUS };

/* A push on its way from the head to its answer: the channel lookup, then the publish. */
struct webhook_push {
	struct gateway *g;
	struct http_req *r;
	char channel[IDS_UUID_LEN + 1];
	unsigned char token_hash[crypto_hash_sha256_BYTES];
	char *resource;
	long long number;
	bool sync;
};

static void webhook_push_free(struct webhook_push *p)
{
	http_req_unref(p->r);
	free(p->resource);
	free(p);
}

/* Count one push under result (one of the label values the runbook lists). */
static void webhook_count(const char *result)
{
	metric_inc(metrics_counter("gateway_webhook_notifications_total",
				   "Google push notifications received, by what became of them.", "result", result,
				   NULL));
}

/*
 * Refuse a push with status and the error code that goes with it. channel is logged only when it is a
 * UUID (NULL otherwise): the header is whatever the sender made it. A push that names a channel of ours
 * with the wrong token or resource may be a forgery, and says so louder.
 */
static void webhook_refuse(struct http_req *r, int status, const char *result, const char *channel,
			   const char *message)
{
	static const struct {
		int status;
		const char *code;
	} codes[] = { { 400, "invalid_request" }, { 403, "forbidden" }, { 404, "not_found" },
		      { 413, "payload_too_large" } };
	const char *code = "invalid_request";

	for (size_t i = 0; i < sizeof(codes) / sizeof(*codes); i++) {
		if (codes[i].status == status)
			code = codes[i].code;
	}
	if (channel != NULL && !ids_is_uuid(channel))
		channel = NULL;
	webhook_count(result);
	if (status == 403)
		log_warn("push refused", LOG_STR("channel", channel), LOG_STR("reason", result),
			 LOG_INT("status", status));
	else
		log_info("push refused", LOG_STR("channel", channel), LOG_STR("reason", result),
			 LOG_INT("status", status));
	http_reply_error(r, status, code, "%s", message);
}

static void webhook_unavailable(struct http_req *r, const char *channel, const char *why)
{
	webhook_count("unavailable");
	log_warn("push not taken; Google will send it again", LOG_STR("channel", channel), LOG_STR("why", why));
	http_reply_error(r, 503, "unavailable", "the push cannot be taken now; try again");
}

static void webhook_accept(struct http_req *r, const char *result)
{
	cJSON *body = cJSON_CreateObject();

	webhook_count(result);
	cJSON_AddStringToObject(body, "result", result);
	http_reply_json(r, 200, body);
	cJSON_Delete(body);
}

static void webhook_on_confirm(enum mq_confirm outcome, void *arg)
{
	struct webhook_push *p = arg;

	if (!http_req_done(p->r)) {
		if (outcome == MQ_CONFIRM_ACK) {
			log_info("push accepted", LOG_STR("channel", p->channel), LOG_INT("message_number", p->number));
			webhook_accept(p->r, "accepted");
		} else {
			webhook_unavailable(p->r, p->channel,
					    outcome == MQ_CONFIRM_NACK	       ? "the broker refused the message"
					    : outcome == MQ_CONFIRM_RETURNED ? "no queue takes calendar.changed yet"
									     : "the broker connection was lost");
		}
	}
	webhook_push_free(p);
}

static void webhook_publish(struct webhook_push *p, const char *user)
{
	cJSON *body = cJSON_CreateObject();
	char *text, *message_id;
	struct mq_message msg;
	int rc;

	cJSON_AddStringToObject(body, "user_id", user);
	cJSON_AddStringToObject(body, "channel_id", p->channel);
	cJSON_AddNumberToObject(body, "message_number", (double)p->number);
	text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	message_id = xasprintf("%s:%lld", p->channel, p->number);
	topology_calendar_message(&msg, TOPO_RK_CALENDAR_CHANGED, text, message_id);
	rc = mqbridge_publish(p->g->mq, &msg, false, webhook_on_confirm, p);
	cJSON_free(text);
	free(message_id);
	if (rc < 0) {
		webhook_unavailable(p->r, p->channel, "the broker is not connected");
		webhook_push_free(p);
	}
}

/* Does the stored hex SHA-256 equal the hash of the token the push brought? In constant time. */
static bool webhook_token_ok(const struct webhook_push *p, const char *stored_hex)
{
	unsigned char stored[crypto_hash_sha256_BYTES];
	size_t len = 0;

	if (stored_hex == NULL ||
	    sodium_hex2bin(stored, sizeof(stored), stored_hex, strlen(stored_hex), NULL, &len, NULL) != 0 ||
	    len != sizeof(stored))
		return false;
	return sodium_memcmp(stored, p->token_hash, sizeof(stored)) == 0;
}

static void webhook_on_channel(const struct db_result *res, void *arg)
{
	struct webhook_push *p = arg;
	struct http_req *r = p->r;
	const char *status, *resource;

	if (http_req_done(r)) {
		webhook_push_free(p);
		return;
	}
	if (res->status != DB_OK) {
		webhook_unavailable(r, p->channel, res->error);
		webhook_push_free(p);
		return;
	}
	if (db_ntuples(res) == 0) {
		webhook_refuse(r, 404, "unknown_channel", p->channel, "no such channel");
		webhook_push_free(p);
		return;
	}
	status = db_value(res, 0, CH_STATUS);
	resource = db_value(res, 0, CH_RESOURCE);
	if (strcmp(status, "opening") != 0 && strcmp(status, "live") != 0) {
		webhook_refuse(r, 404, "stopped_channel", p->channel, "the channel is closed");
	} else if (!webhook_token_ok(p, db_value(res, 0, CH_TOKEN_HASH))) {
		webhook_refuse(r, 403, "bad_token", p->channel, "the channel token does not match");
	} else if (resource != NULL ? strcmp(resource, p->resource) != 0 : strcmp(status, "opening") != 0) {
		webhook_refuse(r, 403, "bad_resource", p->channel, "the resource is not the channel's");
	} else if (p->sync) {
		log_debug("channel confirmed by Google", LOG_STR("channel", p->channel), LOG_STR("status", status));
		webhook_accept(r, "sync");
	} else {
		webhook_publish(p, db_value(res, 0, CH_USER));
		return;
	}
	webhook_push_free(p);
}

/* X-Goog-Message-Number: a positive decimal the message can carry exactly; -1 otherwise. */
static long long webhook_message_number(const char *text)
{
	long long n = 0;

	if (text == NULL || *text == '\0' || strlen(text) > 16 || text[strspn(text, "0123456789")] != '\0')
		return -1;
	for (const char *q = text; *q != '\0'; q++)
		n = n * 10 + (*q - '0');
	return n >= 1 && n <= WEBHOOK_MAX_MESSAGE_NUMBER ? n : -1;
}

/* POST /webhooks/google/calendar */
void webhook_google_calendar(struct gateway *g, struct http_req *r)
{
	const char *channel = http_req_header(r, "X-Goog-Channel-ID");
	const char *token = http_req_header(r, "X-Goog-Channel-Token");
	const char *resource = http_req_header(r, "X-Goog-Resource-ID");
	const char *state = http_req_header(r, "X-Goog-Resource-State");
	long long number = webhook_message_number(http_req_header(r, "X-Goog-Message-Number"));
	struct webhook_push *p;
	const char *params[1];

	/* Google's pushes have no body; a request with one is someone else's, and it is never read. */
	if (http_req_body_length(r) > 0) {
		webhook_refuse(r, 413, "has_body", channel, "a push has no body");
		return;
	}
	if (channel == NULL || token == NULL || *token == '\0' || resource == NULL || *resource == '\0' ||
	    state == NULL || number < 0) {
		webhook_refuse(r, 400, "missing_headers", channel,
			       "a push needs X-Goog-Channel-ID, X-Goog-Channel-Token, X-Goog-Resource-ID,"
			       " X-Goog-Resource-State and X-Goog-Message-Number");
		return;
	}
	/* Every channel of ours has a UUID for its id: anything else is not worth a query. */
	if (!ids_is_uuid(channel)) {
		webhook_refuse(r, 400, "missing_headers", NULL,
			       "X-Goog-Channel-ID is not a channel id of this service");
		return;
	}
	if (strcmp(state, "sync") != 0 && strcmp(state, "exists") != 0 && strcmp(state, "not_exists") != 0) {
		webhook_refuse(r, 400, "missing_headers", channel,
			       "X-Goog-Resource-State is not sync, exists or not_exists");
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->g = g;
	p->r = r;
	http_req_ref(r);
	memcpy(p->channel, channel, IDS_UUID_LEN + 1);
	ids_lower(p->channel);
	crypto_hash_sha256(p->token_hash, (const unsigned char *)token, strlen(token));
	p->resource = xstrdup(resource);
	p->number = number;
	p->sync = strcmp(state, "sync") == 0;
	params[0] = p->channel;
	db_read(g->db, webhook_channel_sql, 1, params, webhook_on_channel, p);
}
