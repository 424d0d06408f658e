/*
 * watch: push notifications (events.watch, channels.stop) and the pushes
 * themselves.
 *
 *   POST calendars/{cal}/events/watch   open a channel on the calendar's events
 *   POST channels/stop                  {id, resourceId}: 204, or 404 notFound
 *
 * A channel gets a "sync" message at once (message number 1), then an
 * "exists" message on every change to an event of its calendar, until it
 * expires or is stopped. A push is a bodiless POST to the channel's address
 * with Google's X-Goog-* headers, sent by libevent's HTTP client on the one
 * loop: nothing waits for the receiver. One connection per channel keeps a
 * channel's messages in order. Every push, delivered or not, goes to a log
 * the admin API shows (GET /_standin/pushes), with knobs to drop pushes and
 * to cap channel lifetimes.
 *
 * Addresses: Google takes only https; the stand-in also takes http on
 * loopback (127.0.0.0/8, [::1], localhost), where tests listen, and delivers
 * only those: it speaks no TLS, so a push to an https address is logged as
 * undeliverable.
 */
#include "standin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/keyvalq_struct.h>
#include <sodium.h>

#include "log.h"
#include "xmalloc.h"

#define WATCH_DEFAULT_TTL_S     604800L  /* Google's default for events: 7 days */
#define WATCH_DEFAULT_MAX_TTL_S 2592000L /* 30 days; Google documents no maximum */
#define WATCH_MAX_ID            64
#define WATCH_MAX_TOKEN         256
#define WATCH_LOG_MAX           5000
#define WATCH_TIMEOUT_S         10
#define WATCH_USER_AGENT        "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"

struct channel {
	struct channel *next;
	char *id;
	char *resource_id;
	char *resource_uri;
	char *address;
	char *token; /* NULL: none given */
	char *email; /* the calendar watched */
	char *host;  /* to connect to (numeric) */
	char *host_header;
	char *path; /* path and query of the address */
	int port;
	bool https;
	int64_t created_ms, expiration_ms, stopped_ms;
	long messages; /* the last message number used */
	struct evhttp_connection *conn;
};

/* A push waiting for its receiver's answer. */
struct push {
	struct push *prev, *next;
	struct channel *ch;
	long long n; /* its number in the log */
	int64_t sent_ms;
};

static struct channel *watch_channels; /* newest first */
static struct push *watch_inflight;
static cJSON *watch_log;
static long long watch_count;
static bool watch_drop_all;
static long watch_drop_next;
static long watch_max_ttl_s = WATCH_DEFAULT_MAX_TTL_S;

/* channels.stop's scopes (the discovery document's list, plus the .owned ones). */
static const char *const watch_stop_scopes[] = {
    SCOPE_PREFIX "calendar",
    SCOPE_PREFIX "calendar.events",
    SCOPE_PREFIX "calendar.events.readonly",
    SCOPE_PREFIX "calendar.readonly",
    SCOPE_PREFIX "calendar.settings.readonly",
    SCOPE_PREFIX "calendar.events.owned",
    SCOPE_PREFIX "calendar.events.owned.readonly",
    NULL,
};

static char watch_msg[512];

static void watch_free_channel(struct channel *ch)
{
	if (ch->conn != NULL)
		evhttp_connection_free(ch->conn);
	/* Pushes still queued on the connection never call back: forget them here. */
	for (struct push *p = watch_inflight, *next; p != NULL; p = next) {
		next = p->next;
		if (p->ch != ch)
			continue;
		if (p->prev != NULL)
			p->prev->next = p->next;
		else
			watch_inflight = p->next;
		if (p->next != NULL)
			p->next->prev = p->prev;
		free(p);
	}
	free(ch->id);
	free(ch->resource_id);
	free(ch->resource_uri);
	free(ch->address);
	free(ch->token);
	free(ch->email);
	free(ch->host);
	free(ch->host_header);
	free(ch->path);
	free(ch);
}

void watch_init(void)
{
	watch_log = cJSON_CreateArray();
}

void watch_reset(void)
{
	while (watch_channels != NULL) {
		struct channel *ch = watch_channels;

		watch_channels = ch->next;
		watch_free_channel(ch);
	}
	cJSON_Delete(watch_log);
	watch_log = cJSON_CreateArray();
	watch_count = 0;
	watch_drop_all = false;
	watch_drop_next = 0;
	watch_max_ttl_s = WATCH_DEFAULT_MAX_TTL_S;
}

void watch_free(void)
{
	watch_reset();
	cJSON_Delete(watch_log);
	watch_log = NULL;
}

static void watch_error(struct exchange *ex, int status, const char *domain, const char *reason, const char *message,
                        const char *location)
{
	struct api_error e = {.status = status, .domain = domain, .reason = reason, .message = message};

	if (location != NULL) {
		e.location_type = "parameter";
		e.location = location;
	}
	exchange_api_error(ex, &e);
}

/* The body as a JSON object; NULL once answered. */
static cJSON *watch_body(struct exchange *ex)
{
	size_t len;
	char *s = exchange_body(ex, &len);
	cJSON *j = len == 0 ? cJSON_CreateObject() : cJSON_ParseWithLength(s, len);

	free(s);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		watch_error(ex, 400, "global", "parseError", "Parse Error", NULL);
		return NULL;
	}
	return j;
}

static struct channel *watch_find(const char *id)
{
	for (struct channel *ch = watch_channels; ch != NULL; ch = ch->next) {
		if (strcmp(ch->id, id) == 0)
			return ch;
	}
	return NULL;
}

static bool watch_live(const struct channel *ch, int64_t now)
{
	return ch->stopped_ms == 0 && now < ch->expiration_ms;
}

/* Google's resourceId: opaque and stable for a calendar's events; derived from its id. */
static char *watch_resource_id(const char *email)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char *in = xasprintf("events:%s", email);

	crypto_hash_sha256(h, (const unsigned char *)in, strlen(in));
	free(in);
	return util_base64url(h, 20);
}

/* A positive count of milliseconds or seconds from a JSON string of digits or a number; -1 otherwise. */
static int watch_int(const cJSON *v, long long max, long long *out)
{
	char *end;

	if (cJSON_IsNumber(v)) {
		if (v->valuedouble < 0 || v->valuedouble > (double)max ||
		    v->valuedouble != (double)(long long)v->valuedouble)
			return -1;
		*out = (long long)v->valuedouble;
		return 0;
	}
	if (!cJSON_IsString(v) || v->valuestring[0] < '0' || v->valuestring[0] > '9')
		return -1;
	*out = strtoll(v->valuestring, &end, 10);
	return *end == '\0' && *out >= 0 && *out <= max ? 0 : -1;
}

/* Loopback in any form the tests use: 127.0.0.0/8, ::1, localhost. */
static bool watch_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/*
 * Check the address and fill ch's delivery fields; on error the reason and
 * message (watch_msg) of Google's 400.
 */
static const char *watch_address(struct channel *ch, const char *address)
{
	struct evhttp_uri *u = evhttp_uri_parse(address);
	const char *scheme, *host, *path, *query;
	char *bare;
	int port;

	if (u == NULL || (scheme = evhttp_uri_get_scheme(u)) == NULL || (host = evhttp_uri_get_host(u)) == NULL ||
	    host[0] == '\0') {
		if (u != NULL)
			evhttp_uri_free(u);
		snprintf(watch_msg, sizeof(watch_msg), "Invalid WebHook callback address: %.400s", address);
		return "push.webhookUrlNoHostOrAddress";
	}
	bare = host[0] == '[' ? xstrndup(host + 1, strlen(host) - 2) : xstrdup(host);
	ch->https = strcasecmp(scheme, "https") == 0;
	if (!ch->https && (strcasecmp(scheme, "http") != 0 || !watch_loopback(bare))) {
		free(bare);
		evhttp_uri_free(u);
		snprintf(watch_msg, sizeof(watch_msg), "WebHook callback must be HTTPS: %.400s", address);
		return "push.webhookUrlNotHttps";
	}
	port = evhttp_uri_get_port(u);
	if (port < 0)
		port = ch->https ? 443 : 80;
	path = evhttp_uri_get_path(u);
	query = evhttp_uri_get_query(u);
	ch->port = port;
	ch->host = strcasecmp(bare, "localhost") == 0 ? xstrdup("127.0.0.1") : xstrdup(bare);
	ch->host_header = strchr(bare, ':') != NULL ? xasprintf("[%s]:%d", bare, port) : xasprintf("%s:%d", bare, port);
	ch->path = xasprintf("%s%s%s", path != NULL && path[0] != '\0' ? path : "/", query != NULL ? "?" : "",
	                     query != NULL ? query : "");
	free(bare);
	evhttp_uri_free(u);
	return NULL;
}

static cJSON *watch_find_push(long long n)
{
	cJSON *rec;

	cJSON_ArrayForEach(rec, watch_log) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, "n");

		if (cJSON_IsNumber(v) && (long long)v->valuedouble == n)
			return rec;
	}
	return NULL;
}

static void watch_set_result(cJSON *rec, const char *result, int status, const char *error, long long ms)
{
	if (rec == NULL)
		return;
	cJSON_ReplaceItemInObjectCaseSensitive(rec, "result", cJSON_CreateString(result));
	cJSON_ReplaceItemInObjectCaseSensitive(rec, "status",
	                                       status > 0 ? cJSON_CreateNumber(status) : cJSON_CreateNull());
	cJSON_ReplaceItemInObjectCaseSensitive(rec, "error",
	                                       error != NULL ? cJSON_CreateString(error) : cJSON_CreateNull());
	cJSON_ReplaceItemInObjectCaseSensitive(rec, "ms",
	                                       ms >= 0 ? cJSON_CreateNumber((double)ms) : cJSON_CreateNull());
}

static void watch_done(struct evhttp_request *req, void *arg)
{
	struct push *p = arg;
	int status = req != NULL ? evhttp_request_get_response_code(req) : 0;
	cJSON *rec = watch_find_push(p->n);
	long long ms = util_now_ms() - p->sent_ms;

	if (status >= 200 && status < 300)
		watch_set_result(rec, "delivered", status, NULL, ms);
	else if (status > 0)
		watch_set_result(rec, "failed", status, "the receiver did not answer 2xx", ms);
	else
		watch_set_result(rec, "failed", 0, "no answer (connection refused, reset or timed out)", ms);
	log_debug("push done", LOG_INT("n", p->n), LOG_INT("status", status));
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		watch_inflight = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	free(p);
}

/* RFC 1123, as X-Goog-Channel-Expiration: "Tue, 19 Nov 2030 01:13:52 GMT". */
static void watch_http_date(int64_t ms, char *buf, size_t size)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	         tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Send (or drop) message state on ch; the outcome lands in the log. */
static void watch_push(struct channel *ch, const char *state)
{
	cJSON *rec = cJSON_CreateObject();
	int64_t now = util_now_ms();
	char when[32], expires[48], number[24];
	struct evhttp_request *req;
	struct evkeyvalq *h;
	struct push *p;

	ch->messages++;
	util_format_time(now, when, sizeof(when));
	cJSON_AddNumberToObject(rec, "n", (double)++watch_count);
	cJSON_AddStringToObject(rec, "time", when);
	cJSON_AddStringToObject(rec, "channel_id", ch->id);
	cJSON_AddStringToObject(rec, "calendar", ch->email);
	cJSON_AddStringToObject(rec, "address", ch->address);
	cJSON_AddStringToObject(rec, "state", state);
	cJSON_AddNumberToObject(rec, "message_number", (double)ch->messages);
	cJSON_AddStringToObject(rec, "result", "pending");
	cJSON_AddNullToObject(rec, "status");
	cJSON_AddNullToObject(rec, "error");
	cJSON_AddNullToObject(rec, "ms");
	cJSON_AddItemToArray(watch_log, rec);
	if (cJSON_GetArraySize(watch_log) > WATCH_LOG_MAX)
		cJSON_DeleteItemFromArray(watch_log, 0);
	if (watch_drop_all || watch_drop_next > 0) {
		if (!watch_drop_all)
			watch_drop_next--;
		watch_set_result(rec, "dropped", 0, "dropped by the /_standin/pushes knob", -1);
		return;
	}
	if (ch->https) {
		watch_set_result(rec, "undeliverable", 0, "the stand-in delivers to http loopback addresses only", -1);
		return;
	}
	if (ch->conn == NULL) {
		ch->conn = evhttp_connection_base_new(exchange_base, NULL, ch->host, (ev_uint16_t)ch->port);
		if (ch->conn == NULL) {
			watch_set_result(rec, "failed", 0, "cannot create a connection", -1);
			return;
		}
		evhttp_connection_set_timeout(ch->conn, WATCH_TIMEOUT_S);
		evhttp_connection_set_retries(ch->conn, 0);
	}
	p = xcalloc(1, sizeof(*p));
	p->ch = ch;
	p->n = watch_count;
	p->sent_ms = now;
	req = evhttp_request_new(watch_done, p);
	h = evhttp_request_get_output_headers(req);
	watch_http_date(ch->expiration_ms, expires, sizeof(expires));
	snprintf(number, sizeof(number), "%ld", ch->messages);
	evhttp_add_header(h, "Host", ch->host_header);
	evhttp_add_header(h, "User-Agent", WATCH_USER_AGENT);
	evhttp_add_header(h, "Accept", "*/*");
	evhttp_add_header(h, "Content-Length", "0");
	/*
	 * A fresh connection per push: a receiver that closes an idle keep-alive
	 * connection (Python's http.server does after every answer) would
	 * otherwise race the next push onto a dead socket and lose it.
	 */
	evhttp_add_header(h, "Connection", "close");
	evhttp_add_header(h, "X-Goog-Channel-ID", ch->id);
	if (ch->token != NULL)
		evhttp_add_header(h, "X-Goog-Channel-Token", ch->token);
	evhttp_add_header(h, "X-Goog-Channel-Expiration", expires);
	evhttp_add_header(h, "X-Goog-Resource-ID", ch->resource_id);
	evhttp_add_header(h, "X-Goog-Resource-URI", ch->resource_uri);
	evhttp_add_header(h, "X-Goog-Resource-State", state);
	evhttp_add_header(h, "X-Goog-Message-Number", number);
	p->next = watch_inflight;
	if (watch_inflight != NULL)
		watch_inflight->prev = p;
	watch_inflight = p;
	/* On failure libevent has freed req without calling back. */
	if (evhttp_make_request(ch->conn, req, EVHTTP_REQ_POST, ch->path) < 0) {
		watch_set_result(rec, "failed", 0, "cannot send the request", -1);
		if (p->next != NULL)
			p->next->prev = NULL;
		watch_inflight = p->next;
		free(p);
	}
}

void watch_notify(struct account *acct)
{
	int64_t now = util_now_ms();

	for (struct channel *ch = watch_channels; ch != NULL; ch = ch->next) {
		if (watch_live(ch, now) && strcmp(ch->email, acct->email) == 0)
			watch_push(ch, "exists");
	}
}

static cJSON *watch_channel_json(const struct channel *ch, bool admin)
{
	cJSON *o = cJSON_CreateObject();
	char exp[24];

	snprintf(exp, sizeof(exp), "%lld", (long long)ch->expiration_ms);
	if (!admin)
		cJSON_AddStringToObject(o, "kind", "api#channel");
	cJSON_AddStringToObject(o, "id", ch->id);
	cJSON_AddStringToObject(o, admin ? "resource_id" : "resourceId", ch->resource_id);
	cJSON_AddStringToObject(o, admin ? "resource_uri" : "resourceUri", ch->resource_uri);
	if (ch->token != NULL)
		cJSON_AddStringToObject(o, "token", ch->token);
	else if (admin)
		cJSON_AddNullToObject(o, "token");
	cJSON_AddStringToObject(o, "expiration", exp);
	if (admin) {
		int64_t now = util_now_ms();

		cJSON_AddStringToObject(o, "calendar", ch->email);
		cJSON_AddStringToObject(o, "address", ch->address);
		cJSON_AddStringToObject(o, "state",
		                        ch->stopped_ms != 0   ? "stopped"
		                        : watch_live(ch, now) ? "live"
		                                              : "expired");
		cJSON_AddNumberToObject(o, "messages", (double)ch->messages);
	}
	return o;
}

void watch_events(struct exchange *ex, struct account *acct)
{
	cJSON *body = watch_body(ex);
	const cJSON *id, *type, *address, *token, *expiration, *params, *ttl;
	struct channel *ch;
	const char *reason;
	long long want_exp = -1, want_ttl = -1;
	int64_t now = util_now_ms(), exp;

	if (body == NULL)
		return;
	id = cJSON_GetObjectItemCaseSensitive(body, "id");
	type = cJSON_GetObjectItemCaseSensitive(body, "type");
	address = cJSON_GetObjectItemCaseSensitive(body, "address");
	token = cJSON_GetObjectItemCaseSensitive(body, "token");
	expiration = cJSON_GetObjectItemCaseSensitive(body, "expiration");
	params = cJSON_GetObjectItemCaseSensitive(body, "params");
	ttl = cJSON_GetObjectItemCaseSensitive(params, "ttl");
	if (id == NULL || cJSON_IsNull(id) || (cJSON_IsString(id) && id->valuestring[0] == '\0')) {
		watch_error(ex, 400, "global", "required", "Required", "id");
	} else if (!cJSON_IsString(id) || strlen(id->valuestring) > WATCH_MAX_ID ||
	           strspn(id->valuestring, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=") !=
	               strlen(id->valuestring)) {
		watch_error(ex, 400, "global", "invalid", "Invalid channel id.", "id");
	} else if (type == NULL || cJSON_IsNull(type)) {
		watch_error(ex, 400, "global", "required", "Required", "type");
	} else if (!cJSON_IsString(type) ||
	           (strcmp(type->valuestring, "web_hook") != 0 && strcmp(type->valuestring, "webhook") != 0)) {
		snprintf(watch_msg, sizeof(watch_msg), "Channel type not supported: %.100s",
		         cJSON_IsString(type) ? type->valuestring : "?");
		watch_error(ex, 400, "global", "push.channelTypeNotSupported", watch_msg, NULL);
	} else if (address == NULL || cJSON_IsNull(address) ||
	           (cJSON_IsString(address) && address->valuestring[0] == '\0')) {
		watch_error(ex, 400, "global", "push.webhookUrlNoHostOrAddress", "WebHook callback address is missing.",
		            NULL);
	} else if (!cJSON_IsString(address)) {
		watch_error(ex, 400, "global", "push.webhookUrlNoHostOrAddress", "Invalid WebHook callback address.",
		            NULL);
	} else if (token != NULL && !cJSON_IsNull(token) &&
	           (!cJSON_IsString(token) || strlen(token->valuestring) > WATCH_MAX_TOKEN)) {
		watch_error(ex, 400, "global", "invalid", "Invalid channel token.", "token");
	} else if (expiration != NULL && !cJSON_IsNull(expiration) &&
	           (watch_int(expiration, INT64_MAX / 2, &want_exp) < 0 || want_exp <= now)) {
		watch_error(ex, 400, "global", "invalid", "Invalid channel expiration.", "expiration");
	} else if (params != NULL && !cJSON_IsNull(params) && !cJSON_IsObject(params)) {
		watch_error(ex, 400, "global", "invalid", "Invalid channel params.", "params");
	} else if (ttl != NULL && (watch_int(ttl, 100L * 365 * 86400, &want_ttl) < 0 || want_ttl == 0)) {
		watch_error(ex, 400, "global", "invalid", "Invalid value for params.ttl.", "params.ttl");
	} else if (watch_find(id->valuestring) != NULL) {
		snprintf(watch_msg, sizeof(watch_msg), "Channel id %s not unique", id->valuestring);
		watch_error(ex, 400, "global", "channelIdNotUnique", watch_msg, NULL);
	} else {
		ch = xcalloc(1, sizeof(*ch));
		if ((reason = watch_address(ch, address->valuestring)) != NULL) {
			watch_free_channel(ch);
			watch_error(ex, 400, "global", reason, watch_msg, NULL);
			cJSON_Delete(body);
			return;
		}
		ch->id = xstrdup(id->valuestring);
		ch->address = xstrdup(address->valuestring);
		ch->token = cJSON_IsString(token) ? xstrdup(token->valuestring) : NULL;
		ch->email = xstrdup(acct->email);
		ch->resource_id = watch_resource_id(acct->email);
		{
			char *cal = util_url_encode(ex->seg[0]);

			ch->resource_uri =
			    xasprintf("https://www.googleapis.com/calendar/v3/calendars/%s/events?alt=json", cal);
			free(cal);
		}
		/* The earliest of what was asked (7 days when nothing) and the cap. */
		exp = now + (want_ttl > 0 ? want_ttl : WATCH_DEFAULT_TTL_S) * 1000;
		if (want_exp > 0 && want_exp < exp)
			exp = want_exp;
		if (exp > now + (int64_t)watch_max_ttl_s * 1000)
			exp = now + (int64_t)watch_max_ttl_s * 1000;
		ch->created_ms = now;
		ch->expiration_ms = exp;
		ch->next = watch_channels;
		watch_channels = ch;
		if (ch->token != NULL)
			grants_note_secret(ch->token, "channel_token");
		log_info("channel opened", LOG_STR("channel", ch->id), LOG_EMAIL("email", ch->email),
		         LOG_INT("expiration_ms", ch->expiration_ms));
		exchange_reply_json(ex, 200, watch_channel_json(ch, false));
		watch_push(ch, "sync");
	}
	cJSON_Delete(body);
}

/* Google's project number is the leading digits of a real client id; "0" here otherwise. */
static void watch_project(char *buf, size_t size)
{
	size_t n = strspn(config.client_id, "0123456789");

	if (n == 0 || n >= size)
		snprintf(buf, size, "0");
	else
		snprintf(buf, size, "%.*s", (int)n, config.client_id);
}

void watch_stop(struct exchange *ex)
{
	const struct access *a = oauth_authenticate(ex, watch_stop_scopes);
	const cJSON *id, *rid;
	struct channel *ch;
	cJSON *body;
	char project[32];

	if (a == NULL || (body = watch_body(ex)) == NULL)
		return;
	id = cJSON_GetObjectItemCaseSensitive(body, "id");
	rid = cJSON_GetObjectItemCaseSensitive(body, "resourceId");
	if (!cJSON_IsString(id) || id->valuestring[0] == '\0') {
		watch_error(ex, 400, "global", "required", "Required", "id");
	} else if (!cJSON_IsString(rid) || rid->valuestring[0] == '\0') {
		watch_error(ex, 400, "global", "required", "Required", "resourceId");
	} else if ((ch = watch_find(id->valuestring)) == NULL || strcmp(ch->resource_id, rid->valuestring) != 0 ||
	           strcmp(ch->email, a->email) != 0 || !watch_live(ch, util_now_ms())) {
		watch_project(project, sizeof(project));
		snprintf(watch_msg, sizeof(watch_msg), "Channel '%.100s' not found for project '%s'", id->valuestring,
		         project);
		watch_error(ex, 404, "global", "notFound", watch_msg, NULL);
	} else {
		ch->stopped_ms = util_now_ms();
		log_info("channel stopped", LOG_STR("channel", ch->id), LOG_EMAIL("email", ch->email));
		exchange_reply(ex, 204, NULL, NULL, 0);
	}
	cJSON_Delete(body);
}

int watch_set_json(const cJSON *obj, const char **err)
{
	const cJSON *v;
	bool drop_all = watch_drop_all;
	long drop_next = watch_drop_next, max_ttl = watch_max_ttl_s;

	cJSON_ArrayForEach(v, obj) {
		if (strcmp(v->string, "drop_all") == 0) {
			if (!cJSON_IsBool(v)) {
				*err = "drop_all must be true or false";
				return -1;
			}
			drop_all = cJSON_IsTrue(v);
		} else if (strcmp(v->string, "drop_next") == 0) {
			if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e9 ||
			    v->valuedouble != (double)(long)v->valuedouble) {
				*err = "drop_next must be a count of pushes";
				return -1;
			}
			drop_next = (long)v->valuedouble;
		} else if (strcmp(v->string, "max_ttl_s") == 0) {
			if (cJSON_IsNull(v)) {
				max_ttl = WATCH_DEFAULT_MAX_TTL_S;
			} else if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 100.0 * 365 * 86400 ||
			           v->valuedouble != (double)(long)v->valuedouble) {
				*err = "max_ttl_s must be a positive number of seconds (null: the default)";
				return -1;
			} else {
				max_ttl = (long)v->valuedouble;
			}
		} else {
			*err = "unknown key (drop_all, drop_next, max_ttl_s)";
			return -1;
		}
	}
	watch_drop_all = drop_all;
	watch_drop_next = drop_next;
	watch_max_ttl_s = max_ttl;
	return 0;
}

cJSON *watch_to_json(void)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *settings = cJSON_AddObjectToObject(o, "settings");
	cJSON *channels = cJSON_AddArrayToObject(o, "channels");
	int n = 0;

	cJSON_AddBoolToObject(settings, "drop_all", watch_drop_all);
	cJSON_AddNumberToObject(settings, "drop_next", (double)watch_drop_next);
	cJSON_AddNumberToObject(settings, "max_ttl_s", (double)watch_max_ttl_s);
	/* Oldest first, as the push log. */
	for (struct channel *ch = watch_channels; ch != NULL; ch = ch->next)
		n++;
	for (int i = n - 1; i >= 0; i--) {
		struct channel *ch = watch_channels;

		for (int k = 0; k < i; k++)
			ch = ch->next;
		cJSON_AddItemToArray(channels, watch_channel_json(ch, true));
	}
	cJSON_AddItemToObject(o, "pushes", cJSON_Duplicate(watch_log, 1));
	return o;
}
