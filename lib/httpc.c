/*
 * httpc: libcurl's multi-socket API on the libevent loop (see httpc.h), in
 * the shape of curl's docs/examples/multi-event.c and hiperfifo.c.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one event
 * per socket, found again through curl_multi_assign) and when to wake it
 * (CURLMOPT_TIMERFUNCTION: one evtimer). Every wake-up calls
 * curl_multi_socket_action and then collects finished transfers with
 * curl_multi_info_read. Finished transfers go on a list and their callbacks
 * run after curl has returned, so a callback may start new requests or even
 * free the client. Completion is only ever noticed from an event, so no
 * callback can run inside httpc_send() or httpc_add_easy().
 *
 * curl_global_init() runs once, from the first httpc_new(): it is not
 * thread-safe, so create clients at start-up, before any thread exists.
 *
 * What passes through here carries secrets: Authorization headers, token
 * endpoint forms with a refresh token, code or client secret, answers with
 * tokens, the mailer's SMTP password. Every buffer that held one is zeroed
 * before it is freed (xmalloc.h): ours (the request body, which curl is given
 * by pointer rather than copied, the header list, the answer as it grows) and
 * libcurl's own, through the memory functions given to curl_global_init_mem().
 */
#include "httpc.h"

#include <ctype.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "xmalloc.h"

#define HTTPC_DEFAULT_TIMEOUT_MS	30000L
#define HTTPC_DEFAULT_CONNECT_MS	5000L
#define HTTPC_MAX_BODY			(8L * 1024 * 1024)	/* larger answers fail the transfer */
#define HTTPC_KEEP_CONNECTIONS		256L	/* idle connections kept without a cap */

struct httpc_sock {
	struct httpc *client;
	struct httpc_sock *prev, *next;
	curl_socket_t fd;
	struct event *ev;
};

struct httpc_xfer {
	struct httpc *client;
	struct httpc_xfer *prev, *next;	/* client->active, then client->done (next only) */
	CURL *easy;
	httpc_done_cb done;		/* httpc_send */
	httpc_easy_cb easy_done;	/* httpc_add_easy */
	void *arg;
	struct curl_slist *headers;
	char *request;			/* the request body curl sends from (CURLOPT_POSTFIELDS), or NULL */
	size_t request_len;
	char *body;			/* the answer, NUL-terminated */
	size_t body_len;
	size_t body_cap;
	bool too_big;
	long retry_after_s;
	CURLcode result;
	char errbuf[CURL_ERROR_SIZE];
};

struct httpc {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct httpc_sock *socks;	/* every socket curl asked us to watch */
	struct httpc_xfer *active;	/* in the multi handle */
	struct httpc_xfer *done_head, *done_tail;	/* finished, callback pending */
	unsigned in_flight;
	bool closing;
	bool delivering;		/* httpc_deliver_all is running callbacks */
	bool freed;			/* httpc_free ran meanwhile: the deliverer frees the struct */
};

static bool httpc_global_done;

static void httpc_active_unlink(struct httpc *client, struct httpc_xfer *x)
{
	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		client->active = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
}

/* Take x out of the multi handle and queue its callback. */
static void httpc_retire(struct httpc *client, struct httpc_xfer *x, CURLcode result)
{
	curl_multi_remove_handle(client->multi, x->easy);
	httpc_active_unlink(client, x);
	x->result = result;
	if (client->done_tail != NULL)
		client->done_tail->next = x;
	else
		client->done_head = x;
	client->done_tail = x;
}

static void httpc_collect(struct httpc *client)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(client->multi, &left)) != NULL) {
		char *priv = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		/* msg is invalid once the handle is removed: httpc_retire reads the result first. */
		httpc_retire(client, (struct httpc_xfer *)priv, msg->data.result);
	}
}

/* Only after curl_easy_cleanup(): the handle points at the request body and the header list. */
static void httpc_xfer_free(struct httpc_xfer *x)
{
	for (struct curl_slist *h = x->headers; h != NULL; h = h->next)
		xwipe(h->data, strlen(h->data));
	curl_slist_free_all(x->headers);
	xfree_wiped(x->request, x->request_len);
	xfree_wiped(x->body, x->body_cap);
	free(x);
}

/* Run one finished transfer's callback and release it; may free the client. */
static void httpc_deliver(struct httpc_xfer *x)
{
	struct httpc_response resp = { .retry_after_s = x->retry_after_s };
	CURLcode result = x->result;

	if (x->easy_done != NULL) {
		/* The callback owns the handle from here on. */
		x->easy_done(x->easy, result, x->arg);
		httpc_xfer_free(x);
		return;
	}
	if (x->too_big)
		result = CURLE_FILESIZE_EXCEEDED;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &resp.status);
	curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME, &resp.seconds);
	resp.result = result;
	if (x->too_big || result == CURLE_FILESIZE_EXCEEDED)
		resp.error = "response body larger than the 8 MiB limit";
	else if (result == CURLE_ABORTED_BY_CALLBACK)
		resp.error = "HTTP client shutting down";
	else if (result != CURLE_OK)
		resp.error = x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(result);
	resp.body = x->body != NULL ? x->body : "";
	resp.body_len = x->body_len;
	x->done(&resp, x->arg);
	curl_easy_cleanup(x->easy);
	httpc_xfer_free(x);
}

static struct httpc_xfer *httpc_done_pop(struct httpc *client)
{
	struct httpc_xfer *x = client->done_head;

	if (x != NULL) {
		client->done_head = x->next;
		if (client->done_head == NULL)
			client->done_tail = NULL;
		x->next = NULL;
		client->in_flight--;
	}
	return x;
}

/*
 * Run every pending callback. A callback may call httpc_free(), which then
 * runs the rest itself and leaves only the struct for us to release.
 */
static void httpc_deliver_all(struct httpc *client)
{
	client->delivering = true;
	while (!client->freed && client->done_head != NULL)
		httpc_deliver(httpc_done_pop(client));
	client->delivering = false;
	if (client->freed)
		free(client);
}

static void httpc_action(struct httpc *client, curl_socket_t fd, int ev_bitmask)
{
	int running;
	CURLMcode rc = curl_multi_socket_action(client->multi, fd, ev_bitmask, &running);

	if (rc != CURLM_OK)
		log_error("curl_multi_socket_action failed", LOG_STR("error", curl_multi_strerror(rc)));
	httpc_collect(client);
	httpc_deliver_all(client);
}

static void httpc_on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	/* socket_action may free the httpc_sock: take the client first. */
	struct httpc *client = ((struct httpc_sock *)arg)->client;
	int mask = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

	httpc_action(client, fd, mask);
}

static void httpc_on_timer_event(evutil_socket_t fd, short what, void *arg)
{
	httpc_action(arg, CURL_SOCKET_TIMEOUT, 0);
}

static void httpc_sock_free(struct httpc *client, struct httpc_sock *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		client->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	event_free(s->ev);
	free(s);
}

/* CURLMOPT_SOCKETFUNCTION: may be called at any time, also from curl_multi_cleanup. */
static int httpc_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct httpc *client = userp;
	struct httpc_sock *s = socketp;
	short kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			httpc_sock_free(client, s);
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->client = client;
		s->fd = fd;
		s->next = client->socks;
		if (s->next != NULL)
			s->next->prev = s;
		client->socks = s;
		curl_multi_assign(client->multi, fd, s);
	} else {
		event_free(s->ev);
	}
	s->ev = xevent_new(client->base, fd, kind, httpc_on_socket_event, s);
	event_add(s->ev, NULL);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: never call libcurl from here, only (re)arm our timer. */
static int httpc_on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct httpc *client = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(client->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(client->timer, &tv);
	return 0;
}

/*
 * libcurl's memory functions: the C library's, except that a block is zeroed
 * before it is released, and a block that must grow moves to a new one and
 * the old is zeroed (realloc() would leave it behind). curl keeps copies of
 * request lines and headers (Authorization), bodies and answers in buffers of
 * its own; this is the only way to reach them. Like curl's own functions they
 * return NULL on exhaustion rather than abort.
 */
static void httpc_mem_free(void *p)
{
	if (p != NULL)
		xfree_wiped(p, malloc_usable_size(p));
}

static void *httpc_mem_realloc(void *p, size_t size)
{
	size_t have;
	void *q;

	if (p == NULL)
		return malloc(size);
	if (size == 0) {
		httpc_mem_free(p);
		return NULL;
	}
	have = malloc_usable_size(p);
	if (size <= have)
		return p;
	q = malloc(size);
	if (q == NULL)
		return NULL;
	memcpy(q, p, have);
	httpc_mem_free(p);
	return q;
}

struct httpc *httpc_new(struct event_base *base, long max_connections)
{
	struct httpc *client;

	if (!httpc_global_done) {
		/* A no-op when something in the process initialised curl first (then without the wiping). */
		CURLcode rc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, httpc_mem_free, httpc_mem_realloc,
						   strdup, calloc);

		if (rc != CURLE_OK) {
			log_error("curl_global_init failed", LOG_STR("error", curl_easy_strerror(rc)));
			abort();
		}
		httpc_global_done = true;
	}
	client = xcalloc(1, sizeof(*client));
	client->base = base;
	client->multi = curl_multi_init();
	if (client->multi == NULL) {
		log_error("curl_multi_init failed");
		abort();
	}
	client->timer = xevent_new(base, -1, 0, httpc_on_timer_event, client);
	curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, httpc_on_socket);
	curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client);
	curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION, httpc_on_timer);
	curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client);
	/*
	 * curl keeps at most four idle connections per transfer in flight at the
	 * moment one finishes, so each dip in concurrency closed connections the
	 * next burst opened again, over TLS against Google a handshake each
	 * (tests/bench: 1,458 connects for 10,000 bookings; 256 with a fixed cache).
	 */
	curl_multi_setopt(client->multi, CURLMOPT_MAXCONNECTS,
			  max_connections > 0 ? max_connections : HTTPC_KEEP_CONNECTIONS);
	if (max_connections > 0)
		curl_multi_setopt(client->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_connections);
	return client;
}

void httpc_free(struct httpc *client)
{
	if (client == NULL || client->closing)
		return;
	client->closing = true;
	while (client->active != NULL)
		httpc_retire(client, client->active, CURLE_ABORTED_BY_CALLBACK);
	while (client->done_head != NULL)
		httpc_deliver(httpc_done_pop(client));
	/* curl may still report sockets of cached connections while it closes them. */
	curl_multi_cleanup(client->multi);
	while (client->socks != NULL)
		httpc_sock_free(client, client->socks);
	event_free(client->timer);
	if (client->delivering)
		client->freed = true;
	else
		free(client);
}

struct event_base *httpc_base(const struct httpc *client)
{
	return client->base;
}

static size_t httpc_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct httpc_xfer *x = arg;
	size_t n = size * nmemb;

	if (n > (size_t)HTTPC_MAX_BODY - x->body_len) {
		/* A short count makes curl fail the transfer (CURLE_WRITE_ERROR). */
		x->too_big = true;
		return 0;
	}
	if (x->body_len + n + 1 > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 4096;

		while (cap < x->body_len + n + 1)
			cap *= 2;
		x->body = xrealloc_wiped(x->body, x->body_len, cap);
		x->body_cap = cap;
	}
	memcpy(x->body + x->body_len, data, n);
	x->body_len += n;
	x->body[x->body_len] = '\0';
	return n;
}

/* "Retry-After: 120" or "Retry-After: Fri, 31 Dec 1999 23:59:59 GMT", as seconds from now. */
static long httpc_parse_retry_after(const char *v, size_t n)
{
	char buf[128];
	char *end;
	long secs;
	time_t when;

	while (n > 0 && isspace((unsigned char)*v)) {
		v++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)v[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	if (isdigit((unsigned char)buf[0])) {
		secs = strtol(buf, &end, 10);
		return *end == '\0' && secs >= 0 ? secs : -1;
	}
	when = curl_getdate(buf, NULL);
	if (when == (time_t)-1)
		return -1;
	return when > time(NULL) ? (long)(when - time(NULL)) : 0;
}

static size_t httpc_on_header(char *data, size_t size, size_t nitems, void *arg)
{
	static const char name[] = "retry-after:";
	struct httpc_xfer *x = arg;
	size_t n = size * nitems;

	/* A new status line (after 1xx or a proxy's CONNECT answer) starts a new header block. */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
		x->retry_after_s = -1;
	else if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0)
		x->retry_after_s = httpc_parse_retry_after(data + sizeof(name) - 1, n - (sizeof(name) - 1));
	return n;
}

static bool httpc_has_header(const char *const *headers, const char *name)
{
	size_t len = strlen(name);

	for (; headers != NULL && *headers != NULL; headers++)
		if (strncasecmp(*headers, name, len) == 0 && (*headers)[len] == ':')
			return true;
	return false;
}

/* Method, body and headers; false when curl refuses an option. */
static bool httpc_setup_request(struct httpc_xfer *x, const struct httpc_request *req)
{
	CURL *e = x->easy;
	const char *method = req->method != NULL ? req->method : "GET";
	bool ok = true;

	if (strcmp(method, "GET") == 0 && req->body == NULL) {
		ok = ok && curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK;
	} else if (strcmp(method, "HEAD") == 0) {
		ok = ok && curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK;
	} else if (req->body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
		   strcmp(method, "PATCH") == 0) {
		/*
		 * POSTFIELDS carries a body for any method. Our own copy rather than curl's
		 * (COPYPOSTFIELDS), so httpc_xfer_free() can wipe it: it may hold a token.
		 */
		x->request_len = req->body != NULL ? req->body_len : 0;
		x->request = xmalloc(x->request_len + 1);
		if (x->request_len > 0)
			memcpy(x->request, req->body, x->request_len);
		x->request[x->request_len] = '\0';
		ok = ok && curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->request_len) == CURLE_OK;
		ok = ok && curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->request) == CURLE_OK;
		if (strcmp(method, "POST") != 0)
			ok = ok && curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
	} else {
		ok = ok && curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
	}
	for (const char *const *h = req->headers; ok && h != NULL && *h != NULL; h++) {
		struct curl_slist *l = curl_slist_append(x->headers, *h);

		ok = l != NULL;
		if (ok)
			x->headers = l;
	}
	/* No 100-continue round trip: APIs answer bodies of this size directly. */
	if (ok && !httpc_has_header(req->headers, "Expect")) {
		struct curl_slist *l = curl_slist_append(x->headers, "Expect:");

		ok = l != NULL;
		if (ok)
			x->headers = l;
	}
	return ok && curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers) == CURLE_OK;
}

static bool httpc_setup(struct httpc_xfer *x, const struct httpc_request *req)
{
	CURL *e = x->easy;
	long timeout = req->timeout_ms > 0 ? req->timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS;
	long connect = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : HTTPC_DEFAULT_CONNECT_MS;

	return curl_easy_setopt(e, CURLOPT_URL, req->url) == CURLE_OK &&
#if LIBCURL_VERSION_NUM >= 0x075500
	       curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
#else
	       curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) == CURLE_OK &&
#endif
	       curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_PRIVATE, x) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "") == CURLE_OK &&
	       /* Refuses a declared length up front; httpc_on_body catches chunked ones. */
	       curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTPC_MAX_BODY) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, httpc_on_body) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_WRITEDATA, x) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, httpc_on_header) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_HEADERDATA, x) == CURLE_OK &&
	       httpc_setup_request(x, req);
}

/* Hand x to the multi handle; false when curl refuses it. */
static bool httpc_start(struct httpc *client, struct httpc_xfer *x)
{
	if (client->closing || curl_multi_add_handle(client->multi, x->easy) != CURLM_OK)
		return false;
	x->client = client;
	x->next = client->active;
	if (x->next != NULL)
		x->next->prev = x;
	client->active = x;
	client->in_flight++;
	return true;
}

int httpc_send(struct httpc *client, const struct httpc_request *req, httpc_done_cb done, void *arg)
{
	struct httpc_xfer *x = xcalloc(1, sizeof(*x));

	x->done = done;
	x->arg = arg;
	x->retry_after_s = -1;
	x->easy = curl_easy_init();
	if (x->easy == NULL || !httpc_setup(x, req) || !httpc_start(client, x)) {
		curl_easy_cleanup(x->easy);
		httpc_xfer_free(x);
		return -1;
	}
	return 0;
}

int httpc_add_easy(struct httpc *client, CURL *easy, httpc_easy_cb done, void *arg)
{
	struct httpc_xfer *x = xcalloc(1, sizeof(*x));

	x->easy = easy;
	x->easy_done = done;
	x->arg = arg;
	x->retry_after_s = -1;
	if (curl_easy_setopt(easy, CURLOPT_PRIVATE, x) != CURLE_OK ||
	    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK || !httpc_start(client, x)) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(x);
		return -1;
	}
	return 0;
}

unsigned httpc_in_flight(const struct httpc *client)
{
	return client != NULL ? client->in_flight : 0;
}
