/*
 * test_httpc: lib/httpc against a real HTTP server (libevent's evhttp on
 * 127.0.0.1, in the same loop as the client) and the run's real SMTP
 * server: methods, bodies and headers round trip, two hundred slow requests
 * overlap and keep their connections through a quiet spell, Retry-After is
 * read, refused connections, timeouts and oversized bodies fail cleanly,
 * and httpc_free() finishes what is in flight.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "httpc.h"
#include "tap.h"
#include "testenv.h"
#include "xmalloc.h"

static struct event_base *base;
static char base_url[64];
static int server_pending;	/* delayed answers not sent yet */
static bool server_port_seen[65536];	/* client ports the server has had requests from */
static int server_connections;	/* how many distinct ones: the client's connections */
static bool in_send;

/* ---- the server ---- */

struct delayed {
	struct evhttp_request *req;	/* NULL once the client went away */
	struct event *ev;
};

static void on_client_gone(struct evhttp_connection *evcon, void *arg)
{
	struct delayed *d = arg;

	d->req = NULL;
}

static void on_delay_done(evutil_socket_t fd, short what, void *arg)
{
	struct delayed *d = arg;

	if (d->req != NULL) {
		struct evbuffer *out = evbuffer_new();

		evhttp_connection_set_closecb(evhttp_request_get_connection(d->req), NULL, NULL);
		evbuffer_add_printf(out, "late");
		evhttp_send_reply(d->req, 200, "OK", out);
		evbuffer_free(out);
	}
	event_free(d->ev);
	free(d);
	server_pending--;
}

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_HEAD: return "HEAD";
	default: return "OTHER";
	}
}

static long query_long(struct evhttp_request *req, const char *key, long def)
{
	struct evkeyvalq q;
	const char *v;
	long n = def;

	if (evhttp_parse_query_str(evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req)) ?
				   evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req)) : "", &q) == 0) {
		v = evhttp_find_header(&q, key);
		if (v != NULL)
			n = atol(v);
		evhttp_clear_headers(&q);
	}
	return n;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyvalq *outh = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evbuffer_new();
	char *peer = NULL;
	ev_uint16_t port = 0;

	evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &port);
	if (!server_port_seen[port]) {
		server_port_seen[port] = true;
		server_connections++;
	}
	if (strcmp(path, "/echo") == 0) {
		const char *xt = evhttp_find_header(in, "X-Test");
		const char *ct = evhttp_find_header(in, "Content-Type");

		evbuffer_add_printf(out, "%s|%s|%s|", method_name(evhttp_request_get_command(req)), xt ? xt : "-",
				    ct ? ct : "-");
		evbuffer_add_buffer(out, evhttp_request_get_input_buffer(req));
		evhttp_send_reply(req, 200, "OK", out);
	} else if (strcmp(path, "/delay") == 0) {
		struct delayed *d = xcalloc(1, sizeof(*d));
		long ms = query_long(req, "ms", 200);
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

		d->req = req;
		d->ev = evtimer_new(base, on_delay_done, d);
		evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_client_gone, d);
		evtimer_add(d->ev, &tv);
		server_pending++;
	} else if (strcmp(path, "/retry-seconds") == 0) {
		evhttp_add_header(outh, "Retry-After", "120");
		evhttp_send_reply(req, 429, "Too Many Requests", out);
	} else if (strcmp(path, "/retry-date") == 0) {
		char date[64];
		time_t when = time(NULL) + 90;
		struct tm tm;

		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&when, &tm));
		evhttp_add_header(outh, "Retry-After", date);
		evhttp_send_reply(req, 503, "Service Unavailable", out);
	} else if (strcmp(path, "/redirect") == 0) {
		evhttp_add_header(outh, "Location", "/echo");
		evhttp_send_reply(req, 302, "Found", out);
	} else if (strcmp(path, "/big") == 0) {
		long n = query_long(req, "n", 1024);
		char *buf = xcalloc(1, (size_t)n);

		memset(buf, 'x', (size_t)n);
		evbuffer_add(out, buf, (size_t)n);
		free(buf);
		if (query_long(req, "chunked", 0)) {
			/* No Content-Length: only the running count can stop it. */
			evhttp_send_reply_start(req, 200, "OK");
			evhttp_send_reply_chunk(req, out);
			evhttp_send_reply_end(req);
		} else {
			evhttp_send_reply(req, 200, "OK", out);
		}
	} else {
		evhttp_send_reply(req, 404, "Not Found", out);
	}
	evbuffer_free(out);
}

/* ---- the client side ---- */

struct got {
	bool done;
	int calls;
	bool inside_send;
	long status;
	CURLcode result;
	char error[CURL_ERROR_SIZE];
	char *body;
	size_t body_len;
	long retry_after_s;
	double seconds;
};

static void got_reset(struct got *g)
{
	free(g->body);
	memset(g, 0, sizeof(*g));
}

static void on_done(const struct httpc_response *r, void *arg)
{
	struct got *g = arg;

	g->calls++;
	g->done = true;
	g->inside_send = in_send;
	g->status = r->status;
	g->result = r->result;
	snprintf(g->error, sizeof(g->error), "%s", r->error ? r->error : "");
	free(g->body);
	g->body = xmemdup(r->body, r->body_len + 1);
	g->body_len = r->body_len;
	g->retry_after_s = r->retry_after_s;
	g->seconds = r->seconds;
}

static int send_req(struct httpc *c, const char *method, const char *path, const char *const *headers,
		    const char *body, size_t body_len, long timeout_ms, struct got *g)
{
	char url[256];
	struct httpc_request req = { .method = method, .url = url, .headers = headers, .body = body,
				     .body_len = body_len, .timeout_ms = timeout_ms };
	int rc;

	snprintf(url, sizeof(url), "%s%s", path[0] == '/' ? base_url : "", path);
	in_send = true;
	rc = httpc_send(c, &req, on_done, g);
	in_send = false;
	return rc;
}

static void fetch(struct httpc *c, const char *method, const char *path, const char *const *headers,
		  const char *body, size_t body_len, long timeout_ms, struct got *g)
{
	got_reset(g);
	if (send_req(c, method, path, headers, body, body_len, timeout_ms, g) == 0)
		testenv_run_until(base, &g->done, 30000);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void run_for(int ms)
{
	bool never = false;

	testenv_run_until(base, &never, ms);
}

static int closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);
	return ntohs(sa.sin_port);
}

static void test_methods(struct httpc *c)
{
	const char *hdrs[] = { "X-Test: hello", "Content-Type: application/json", NULL };
	static const char bin[] = { 'a', '\0', 'b' };
	struct got g = { 0 };

	fetch(c, "GET", "/echo", hdrs, NULL, 0, 0, &g);
	CHECK(g.done && g.result == CURLE_OK, "GET completes (%s)", g.error);
	CHECK(!g.inside_send, "the callback does not run inside httpc_send()");
	CHECK_INT(g.status, 200, "GET status");
	CHECK_STR(g.body, "GET|hello|application/json|", "GET sends the headers");
	CHECK_INT(g.retry_after_s, -1, "no Retry-After gives -1");
	CHECK(g.seconds > 0, "the total time is reported");

	fetch(c, "POST", "/echo", hdrs, "{\"a\":1}", 7, 0, &g);
	CHECK_INT(g.status, 200, "POST status");
	CHECK_STR(g.body, "POST|hello|application/json|{\"a\":1}", "POST sends headers and body");

	fetch(c, "PATCH", "/echo", hdrs, "{\"b\":2}", 7, 0, &g);
	CHECK_STR(g.body, "PATCH|hello|application/json|{\"b\":2}", "PATCH sends its body");

	fetch(c, "PUT", "/echo", NULL, "put", 3, 0, &g);
	CHECK(g.body && strncmp(g.body, "PUT|-|", 6) == 0 && strstr(g.body, "|put"), "PUT sends its body: %s",
	      g.body);

	fetch(c, "DELETE", "/echo", hdrs, NULL, 0, 0, &g);
	CHECK_INT(g.status, 200, "DELETE status");
	CHECK_STR(g.body, "DELETE|hello|application/json|", "DELETE round trip");

	fetch(c, "POST", "/echo", NULL, bin, sizeof(bin), 0, &g);
	CHECK(g.body_len > 3 && memcmp(g.body + g.body_len - 3, bin, 3) == 0,
	      "a body with a NUL byte goes out whole (body_len, not strlen)");
	CHECK(g.body[g.body_len] == '\0', "the answer is NUL-terminated");

	fetch(c, "GET", "/nothing-here", NULL, NULL, 0, 0, &g);
	CHECK(g.result == CURLE_OK && g.status == 404, "a 404 is an answer, not a transfer failure");
	CHECK_STR(g.body, "", "an empty body is an empty string");

	fetch(c, "GET", "/redirect", NULL, NULL, 0, 0, &g);
	CHECK_INT(g.status, 302, "redirects are not followed");

	got_reset(&g);
	fetch(c, "GET", "ftp://127.0.0.1/file", NULL, NULL, 0, 0, &g);
	CHECK(g.done && g.result == CURLE_UNSUPPORTED_PROTOCOL, "only http and https are allowed (%d)", g.result);
	got_reset(&g);
}

struct many {
	int done;
	int ok;
};

static void on_many(const struct httpc_response *r, void *arg)
{
	struct many *m = arg;

	m->done++;
	if (r->result == CURLE_OK && r->status == 200 && strcmp(r->body, "late") == 0)
		m->ok++;
}

static void test_concurrent(struct httpc *c)
{
	struct many m = { 0 };
	char url[128];
	struct httpc_request req = { .method = "GET", .url = url };
	long start = now_ms();
	int started = 0;

	snprintf(url, sizeof(url), "%s/delay?ms=200", base_url);
	for (int i = 0; i < 200; i++)
		started += httpc_send(c, &req, on_many, &m) == 0;
	CHECK_INT(started, 200, "200 requests start");
	CHECK_INT(httpc_in_flight(c), 200, "httpc_in_flight counts them");
	while (m.done < 200 && now_ms() - start < 60000)
		event_base_loop(base, EVLOOP_ONCE);
	CHECK_INT(m.ok, 200, "200 requests to a 200 ms endpoint all succeed");
	CHECK(now_ms() - start < 10000, "overlapping, not one after another (%ld ms; serial would be 40000)",
	      now_ms() - start);
	CHECK_INT(httpc_in_flight(c), 0, "nothing left in flight");
	printf("# 200 x 200 ms in %ld ms\n", now_ms() - start);
}

/*
 * After a burst, a spell of one request at a time must not close the
 * burst's connections: the next burst reuses them (curl's default cache
 * shrinks to four per transfer in flight).
 */
static void test_keeps_connections(struct httpc *c)
{
	struct many m = { 0 };
	char url[128];
	struct httpc_request req = { .method = "GET", .url = url };
	int before;

	snprintf(url, sizeof(url), "%s/delay?ms=1", base_url);
	for (int i = 0; i < 50; i++) {
		int want = m.done + 1;

		httpc_send(c, &req, on_many, &m);
		while (m.done < want)
			event_base_loop(base, EVLOOP_ONCE);
	}
	before = server_connections;
	snprintf(url, sizeof(url), "%s/delay?ms=200", base_url);
	for (int i = 0; i < 200; i++)
		httpc_send(c, &req, on_many, &m);
	while (m.done < 250)
		event_base_loop(base, EVLOOP_ONCE);
	CHECK_INT(m.ok, 250, "every request succeeds");
	CHECK(server_connections - before <= 5, "the second burst reuses the first's connections (%d new)",
	      server_connections - before);
}

static void test_retry_after(struct httpc *c)
{
	struct got g = { 0 };

	fetch(c, "GET", "/retry-seconds", NULL, NULL, 0, 0, &g);
	CHECK_INT(g.status, 429, "429 status");
	CHECK_INT(g.retry_after_s, 120, "Retry-After in seconds");
	fetch(c, "GET", "/retry-date", NULL, NULL, 0, 0, &g);
	CHECK_INT(g.status, 503, "503 status");
	CHECK(g.retry_after_s >= 85 && g.retry_after_s <= 90, "Retry-After as an HTTP date, 90 s ahead (%ld)",
	      g.retry_after_s);
	got_reset(&g);
}

static void test_failures(struct httpc *c)
{
	char url[64];
	struct got g = { 0 };
	long start;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", closed_port());
	fetch(c, "GET", url, NULL, NULL, 0, 0, &g);
	CHECK(g.done && g.result != CURLE_OK, "a refused connection fails the transfer (%d)", g.result);
	CHECK_INT(g.status, 0, "with status 0");
	CHECK(g.error[0] != '\0', "and an explanation: %s", g.error);

	start = now_ms();
	fetch(c, "GET", "/delay?ms=1500", NULL, NULL, 0, 300, &g);
	CHECK_INT(g.result, CURLE_OPERATION_TIMEDOUT, "the total timeout ends a slow answer");
	CHECK(now_ms() - start < 1400, "at the timeout (%ld ms)", now_ms() - start);

	fetch(c, "GET", "/big?n=1048576", NULL, NULL, 0, 0, &g);
	CHECK(g.result == CURLE_OK && g.body_len == 1048576, "a 1 MiB body arrives whole (%zu)", g.body_len);
	fetch(c, "GET", "/big?n=9437184", NULL, NULL, 0, 0, &g);
	CHECK_INT(g.result, CURLE_FILESIZE_EXCEEDED, "a 9 MiB body with Content-Length is refused");
	CHECK(strstr(g.error, "8 MiB") != NULL, "saying why: %s", g.error);
	fetch(c, "GET", "/big?n=9437184&chunked=1", NULL, NULL, 0, 0, &g);
	CHECK_INT(g.result, CURLE_FILESIZE_EXCEEDED, "a chunked 9 MiB body is cut off at the cap");
	CHECK(g.body_len <= 8 * 1024 * 1024, "without keeping more than the cap (%zu)", g.body_len);
	got_reset(&g);
}

struct easy_got {
	bool done;
	int calls;
	CURLcode result;
	long status;
	bool inside;
};

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
	return size * n;
}

static void on_easy(CURL *easy, CURLcode result, void *arg)
{
	struct easy_got *e = arg;

	e->calls++;
	e->done = true;
	e->result = result;
	e->inside = in_send;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &e->status);
	curl_easy_cleanup(easy);
}

static CURL *easy_get(const char *path)
{
	CURL *e = curl_easy_init();
	char url[128];

	snprintf(url, sizeof(url), "%s%s", base_url, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 20000L);
	return e;
}

static void test_add_easy(struct httpc *c)
{
	struct easy_got e = { 0 };
	int rc;

	in_send = true;
	rc = httpc_add_easy(c, easy_get("/echo"), on_easy, &e);
	in_send = false;
	CHECK_INT(rc, 0, "httpc_add_easy accepts a prepared handle");
	testenv_run_until(base, &e.done, 20000);
	CHECK(e.done && e.result == CURLE_OK && e.status == 200, "and drives it to the end (%d, %ld)", e.result,
	      e.status);
	CHECK(!e.inside, "the callback does not run inside httpc_add_easy()");
}

/* A message for the SMTP server, handed to curl in pieces. */
struct mail_src {
	const char *text;
	size_t off;
};

static size_t mail_read(char *buf, size_t size, size_t n, void *arg)
{
	struct mail_src *m = arg;
	size_t left = strlen(m->text) - m->off;
	size_t k = left < size * n ? left : size * n;

	memcpy(buf, m->text + m->off, k);
	m->off += k;
	return k;
}

static CURL *smtp_easy(const char *rcpt, struct mail_src *src, struct curl_slist **rcpts)
{
	CURL *e = curl_easy_init();

	*rcpts = curl_slist_append(NULL, rcpt);
	curl_easy_setopt(e, CURLOPT_URL, testenv_require("TEST_SMTP_URL"));
	curl_easy_setopt(e, CURLOPT_MAIL_FROM, "<sender@example.test>");
	curl_easy_setopt(e, CURLOPT_MAIL_RCPT, *rcpts);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, mail_read);
	curl_easy_setopt(e, CURLOPT_READDATA, src);
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 20000L);
	return e;
}

static bool maildir_has(const char *marker)
{
	char *dir = xasprintf("%s/new", testenv_require("TEST_MAILDIR"));
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;

	while (d != NULL && !found && (de = readdir(d)) != NULL) {
		char *path = xasprintf("%s/%s", dir, de->d_name);
		FILE *f = de->d_name[0] != '.' ? fopen(path, "r") : NULL;
		char line[512];

		while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
			found = strstr(line, marker) != NULL;
		if (f != NULL)
			fclose(f);
		free(path);
	}
	if (d != NULL)
		closedir(d);
	free(dir);
	return found;
}

static void test_smtp(struct httpc *c)
{
	char marker[64];
	char *text;
	struct mail_src src = { 0 }, bad_src = { 0 };
	struct curl_slist *rcpts, *bad_rcpts;
	struct easy_got e = { 0 }, bad = { 0 };

	snprintf(marker, sizeof(marker), "httpc-smtp-%ld-%d", (long)time(NULL), (int)getpid());
	text = xasprintf("From: <sender@example.test>\r\nTo: <owner@example.test>\r\nSubject: %s\r\n\r\n"
			 "Sent through httpc_add_easy.\r\n", marker);
	src.text = text;
	bad_src.text = text;
	httpc_add_easy(c, smtp_easy("<owner@example.test>", &src, &rcpts), on_easy, &e);
	httpc_add_easy(c, smtp_easy("<reject+httpc@example.test>", &bad_src, &bad_rcpts), on_easy, &bad);
	testenv_run_until(base, &e.done, 20000);
	testenv_run_until(base, &bad.done, 20000);
	CHECK(e.done && e.result == CURLE_OK, "an SMTP transfer through httpc_add_easy succeeds (%d)", e.result);
	CHECK(maildir_has(marker), "and the message reached the SMTP server's maildir");
	CHECK(bad.done && bad.result != CURLE_OK, "a rejected recipient fails the transfer (%d)", bad.result);
	curl_slist_free_all(rcpts);
	curl_slist_free_all(bad_rcpts);
	free(text);
}

static void test_free_in_flight(void)
{
	struct httpc *c = httpc_new(base, 0);
	struct got g[3] = { 0 };
	struct easy_got e = { 0 };
	int aborted = 0;

	for (int i = 0; i < 3; i++)
		send_req(c, "GET", "/delay?ms=1000", NULL, NULL, 0, 0, &g[i]);
	httpc_add_easy(c, easy_get("/delay?ms=1000"), on_easy, &e);
	run_for(100);
	CHECK_INT(httpc_in_flight(c), 4, "four transfers in flight");
	httpc_free(c);
	for (int i = 0; i < 3; i++)
		aborted += g[i].calls == 1 && g[i].result == CURLE_ABORTED_BY_CALLBACK;
	CHECK_INT(aborted, 3, "httpc_free runs their callbacks with CURLE_ABORTED_BY_CALLBACK");
	CHECK(e.calls == 1 && e.result == CURLE_ABORTED_BY_CALLBACK, "including the easy handle's, which it owns");
	for (int i = 0; i < 3; i++)
		got_reset(&g[i]);
}

/* A callback that frees the client while other transfers are still going. */
struct freeing {
	struct httpc *c;
	int calls;
	int aborted;
	bool freed;
};

static void on_freeing(const struct httpc_response *r, void *arg)
{
	struct freeing *f = arg;

	f->calls++;
	if (r->result == CURLE_ABORTED_BY_CALLBACK)
		f->aborted++;
	if (!f->freed) {
		f->freed = true;
		httpc_free(f->c);
		f->c = NULL;
	}
}

static void test_free_in_callback(void)
{
	struct freeing f = { .c = httpc_new(base, 0) };
	char fast[128], slow[128];
	struct httpc_request rf = { .url = fast }, rs = { .url = slow };
	long start = now_ms();

	snprintf(fast, sizeof(fast), "%s/echo", base_url);
	snprintf(slow, sizeof(slow), "%s/delay?ms=1000", base_url);
	httpc_send(f.c, &rf, on_freeing, &f);
	httpc_send(f.c, &rs, on_freeing, &f);
	httpc_send(f.c, &rs, on_freeing, &f);
	while (!f.freed && now_ms() - start < 20000)
		event_base_loop(base, EVLOOP_ONCE);
	CHECK(f.freed, "a callback may call httpc_free()");
	CHECK_INT(f.calls, 3, "every transfer's callback runs once");
	CHECK_INT(f.aborted, 2, "the unfinished ones as aborted");
}

int main(void)
{
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	struct httpc *c;
	long start;

	/* Fail at once, not half-way, when the run's SMTP server is missing. */
	testenv_require("TEST_SMTP_URL");
	testenv_require("TEST_MAILDIR");
	/* The server writes to clients that gave up (timeouts, the body cap). */
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	http = evhttp_new(base);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
					 EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(http, on_request, NULL);
	sock = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	if (sock == NULL) {
		printf("Bail out! cannot listen on 127.0.0.1\n");
		return 1;
	}
	getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sa, &len);
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", ntohs(sa.sin_port));

	c = httpc_new(base, 0);
	test_methods(c);
	test_concurrent(c);
	test_keeps_connections(c);
	test_retry_after(c);
	test_failures(c);
	test_add_easy(c);
	test_smtp(c);
	httpc_free(c);
	httpc_free(NULL);
	test_free_in_flight();
	test_free_in_callback();

	/* Let the server finish its delayed answers before it goes away. */
	start = now_ms();
	while (server_pending > 0 && now_ms() - start < 10000)
		run_for(50);
	CHECK_INT(server_pending, 0, "the server's delayed answers are all settled");
	evhttp_free(http);
	event_base_free(base);
	curl_global_cleanup();
	return tap_done();
}
