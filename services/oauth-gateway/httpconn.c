/*
 * httpconn: the guard between the gateway's sockets and evhttp (see httpconn.h).
 *
 * How it fits evhttp (libevent 2.1.12, http.c): evhttp asks http_conns_bevcb()
 * for each accepted socket's bufferevent and gets a filter over a socket
 * bufferevent. It reads only what conn_in() moves into the filter's input
 * and writes into the filter's output, which conn_out() copies to the socket.
 * evhttp's read callback must never run while it is busy with a request (it
 * aborts in that state), so this file makes evhttp read (conn_trigger())
 * only when its read is enabled and it has a read callback, which is true
 * only while it waits for a request head; and while a body is read for a
 * request, conn_in() never reports progress to the filter, which would make
 * it call evhttp.
 */
#include "httpconn.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

enum conn_state {
	CONN_HEAD,	/* reading a request head: nothing reaches evhttp until it is whole and checked */
	CONN_BODY_WAIT,	/* a head with a body is with evhttp; nobody has asked for the body yet */
	CONN_BODY,	/* the body goes into the request that asked for it */
	CONN_DISCARD,	/* refused or cut short: what the client still sends is dropped */
};

struct http_conn {
	struct http_conns *cs;		/* NULL once the server is gone */
	struct bufferevent *bev;	/* the filter evhttp reads and writes */
	struct bufferevent *sock;	/* the socket under it */
	evutil_socket_t fd;		/* -1 until evhttp has set it */
	struct http_conn *prev, *next;
	enum conn_state state;
	size_t line;			/* the head being read: where its unfinished line starts */
	size_t scanned;			/* and how far it has been searched for a line end */
	struct event *deadline;		/* the head's */
	struct event *kick;		/* work for the loop, away from evhttp's and the filter's callbacks */
	bool head_pending;		/* a checked head is with evhttp and not yet taken */
	struct http_head head;
	bool refused;			/* a made-up head is with evhttp, behind any pending one */
	struct http_head refusal;
	struct http_conn **slot;	/* the request that took the last head points here */
	struct evbuffer *body;		/* CONN_BODY: where it goes, how much more, whom to tell */
	size_t body_left;
	http_conn_body_cb body_cb;
	void *body_arg;
	size_t lent;			/* bytes of evhttp's output copied to the socket and not yet written */
	bool written;			/* they have been: evhttp is to hear it (from the loop) */
};

struct http_conns {
	struct event_base *base;
	long max;
	struct timeval head_timeout;
	long count;
	bool full;			/* the cap has been reached and said so in the log */
	struct http_conn *list;
	struct http_conn **by_fd;
	size_t nby_fd;
	struct metric *open;
};

/* What evhttp is shown instead of a refused request: something it answers by calling the server. */
static const char conn_made_up_head[] = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";

/* The head check */

static const struct {
	const char *name;
	unsigned type;
} head_methods[] = {
	{ "GET", EVHTTP_REQ_GET },	   { "POST", EVHTTP_REQ_POST },	    { "HEAD", EVHTTP_REQ_HEAD },
	{ "PUT", EVHTTP_REQ_PUT },	   { "DELETE", EVHTTP_REQ_DELETE }, { "OPTIONS", EVHTTP_REQ_OPTIONS },
	{ "TRACE", EVHTTP_REQ_TRACE },	   { "CONNECT", EVHTTP_REQ_CONNECT }, { "PATCH", EVHTTP_REQ_PATCH },
};

static bool head_is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool head_is_token(const char *p, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!head_is_tchar((unsigned char)p[i]))
			return false;
	}
	return true;
}

static bool head_name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

static int head_refuse(struct http_head *h, int status, const char *code, const char *message)
{
	h->status = status;
	h->code = code;
	h->message = message;
	return -1;
}

/* The request line [p, p+len): method, target and version, into h. */
static int head_request_line(const char *p, size_t len, struct http_head *h)
{
	const char *sp1 = memchr(p, ' ', len);
	const char *sp2;
	const char *target, *version;
	size_t tlen, vlen;
	char *t;
	struct evhttp_uri *uri;

	if (sp1 == NULL)
		return head_refuse(h, 400, "invalid_request", "the request line is malformed");
	sp2 = sp1 + 1;
	while (sp2 < p + len && *sp2 != ' ')
		sp2++;
	if (sp2 == p + len)
		return head_refuse(h, 400, "invalid_request", "the request line is malformed");
	target = sp1 + 1;
	tlen = (size_t)(sp2 - target);
	version = sp2 + 1;
	vlen = (size_t)(p + len - version);
	if (!head_is_token(p, (size_t)(sp1 - p)) || tlen == 0 || memchr(version, ' ', vlen) != NULL)
		return head_refuse(h, 400, "invalid_request", "the request line is malformed");
	if (!(vlen == 8 && memcmp(version, "HTTP/1.", 7) == 0 && (version[7] == '0' || version[7] == '1'))) {
		if (vlen == 8 && memcmp(version, "HTTP/", 5) == 0 && version[5] >= '0' && version[5] <= '9' &&
		    version[6] == '.' && version[7] >= '0' && version[7] <= '9')
			return head_refuse(h, 505, "version_not_supported", "only HTTP/1.0 and HTTP/1.1 are spoken here");
		return head_refuse(h, 400, "invalid_request", "the request line is malformed");
	}
	for (size_t i = 0; i < sizeof(head_methods) / sizeof(*head_methods); i++) {
		if (strlen(head_methods[i].name) == (size_t)(sp1 - p) && memcmp(p, head_methods[i].name, sp1 - p) == 0)
			h->method = head_methods[i].type;
	}
	if (h->method == 0)
		return head_refuse(h, 501, "not_implemented", "the request method is not known here");
	if (h->method == EVHTTP_REQ_CONNECT)
		return head_refuse(h, 405, "method_not_allowed", "CONNECT is not allowed here");
	for (size_t i = 0; i < tlen; i++) {
		unsigned char ch = (unsigned char)target[i];

		if (ch <= 0x20 || ch >= 0x7f)
			return head_refuse(h, 400, "invalid_request", "the request target is malformed");
	}
	t = xstrndup(target, tlen);
	uri = evhttp_uri_parse_with_flags(t, EVHTTP_URI_NONCONFORMANT);
	free(t);
	if (uri == NULL)
		return head_refuse(h, 400, "invalid_request", "the request target is malformed");
	evhttp_uri_free(uri);
	return 0;
}

int http_head_check(const char *head, size_t len, struct http_head *h, struct evbuffer *out)
{
	struct evbuffer *kept = NULL;
	const char *p = head;
	const char *end = head + len;
	int nlength = 0;
	bool te = false, expect = false, http11 = false, done = false;
	int rc = -1;

	*h = (struct http_head){ .content_length = -1 };
	if (memchr(head, '\0', len) != NULL)
		return head_refuse(h, 400, "invalid_request", "the request head holds a NUL byte");
	kept = evbuffer_new();
	for (bool first = true; p < end && !done; first = false) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le;
		const char *colon, *v, *ve;

		if (nl == NULL) {
			head_refuse(h, 400, "invalid_request", "the request head is not finished");
			goto out;
		}
		le = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
		for (const char *q = p; q < le; q++) {
			unsigned char ch = (unsigned char)*q;

			if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
				head_refuse(h, 400, "invalid_request",
					    ch == '\r' ? "the request head holds a bare CR"
						       : "the request head holds a control character");
				goto out;
			}
		}
		if (first) {
			if (head_request_line(p, (size_t)(le - p), h) < 0)
				goto out;
			http11 = le[-1] == '1';
			evbuffer_add(kept, p, (size_t)(le - p));
			evbuffer_add(kept, "\r\n", 2);
			p = nl + 1;
			continue;
		}
		if (le == p) {
			done = true;
			p = nl + 1;
			break;
		}
		if (*p == ' ' || *p == '\t') {
			head_refuse(h, 400, "invalid_request", "folded header lines are not accepted");
			goto out;
		}
		colon = memchr(p, ':', (size_t)(le - p));
		if (colon == NULL || !head_is_token(p, (size_t)(colon - p))) {
			head_refuse(h, 400, "invalid_request", "a header line is malformed");
			goto out;
		}
		v = colon + 1;
		ve = le;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (head_name_is(p, (size_t)(colon - p), "Content-Length")) {
			long long n = 0;

			if (++nlength > 1) {
				head_refuse(h, 400, "invalid_request", "the request has more than one Content-Length");
				goto out;
			}
			if (v == ve) {
				head_refuse(h, 400, "invalid_request", "Content-Length is not a number");
				goto out;
			}
			for (const char *q = v; q < ve; q++) {
				if (*q < '0' || *q > '9') {
					head_refuse(h, 400, "invalid_request", "Content-Length is not a number");
					goto out;
				}
				n = n > (LLONG_MAX - 9) / 10 ? LLONG_MAX : n * 10 + (*q - '0');
			}
			h->content_length = n;
		} else if (head_name_is(p, (size_t)(colon - p), "Transfer-Encoding")) {
			te = true;
		} else if (head_name_is(p, (size_t)(colon - p), "Expect")) {
			if (!((size_t)(ve - v) == 12 && strncasecmp(v, "100-continue", 12) == 0)) {
				head_refuse(h, 417, "expectation_failed", "the only expectation met here is 100-continue");
				goto out;
			}
			expect = true;
		} else {
			evbuffer_add(kept, p, (size_t)(colon - p));
			evbuffer_add(kept, ": ", 2);
			evbuffer_add(kept, v, (size_t)(ve - v));
			evbuffer_add(kept, "\r\n", 2);
		}
		p = nl + 1;
	}
	if (!done || p != end) {
		head_refuse(h, 400, "invalid_request", "the request head is not finished");
		goto out;
	}
	if (te && nlength > 0) {
		head_refuse(h, 400, "invalid_request", "the request has both Transfer-Encoding and Content-Length");
		goto out;
	}
	if (te) {
		head_refuse(h, 411, "length_required", "send the body with a Content-Length; Transfer-Encoding is not accepted");
		goto out;
	}
	h->expect_continue = expect && http11 && h->content_length > 0;
	evbuffer_add(kept, "\r\n", 2);
	if (out != NULL)
		evbuffer_add_buffer(out, kept);
	rc = 0;
out:
	evbuffer_free(kept);
	return rc;
}

/* The connections */

static void conn_learn_fd(struct http_conn *c)
{
	struct http_conns *cs = c->cs;
	evutil_socket_t fd;

	if (c->fd >= 0 || cs == NULL || (fd = bufferevent_getfd(c->bev)) < 0)
		return;
	c->fd = fd;
	if ((size_t)fd >= cs->nby_fd) {
		size_t n = (size_t)fd + 64;

		cs->by_fd = xrealloc(cs->by_fd, n * sizeof(*cs->by_fd));
		memset(cs->by_fd + cs->nby_fd, 0, (n - cs->nby_fd) * sizeof(*cs->by_fd));
		cs->nby_fd = n;
	}
	cs->by_fd[fd] = c;
}

/* Let evhttp read the filter's input now, if it waits for a head; otherwise it reads it when it does. */
static void conn_trigger(struct http_conn *c)
{
	bufferevent_data_cb readcb = NULL;

	bufferevent_getcb(c->bev, &readcb, NULL, NULL, NULL);
	if (readcb != NULL && (bufferevent_get_enabled(c->bev) & EV_READ) && c->state != CONN_BODY &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS);
}

static void conn_kick(struct http_conn *c)
{
	if (c->kick != NULL)
		event_active(c->kick, 0, 0);
}

/*
 * Has evhttp not freed the connection yet? It clears the callbacks when it
 * does; until the filter's context goes (conn_free()), c must not touch it.
 */
static bool conn_alive(const struct http_conn *c)
{
	bufferevent_event_cb eventcb = NULL;

	bufferevent_getcb(c->bev, NULL, NULL, &eventcb, NULL);
	return eventcb != NULL;
}

/*
 * evhttp writes its answer while the filter's writing is off and only then
 * turns it on, which a filter does not notice: so the loop moves it on.
 */
static void conn_on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	(void)buf;
	if (info->n_added > 0)
		conn_kick(arg);
}

/*
 * Refuse with h's status: evhttp gets the made-up head (after any pending
 * one) and nothing more. The caller makes evhttp read it (conn_trigger())
 * unless it is inside the filter, which does.
 */
static void conn_refuse(struct http_conn *c, const struct http_head *h)
{
	struct evbuffer *in = bufferevent_get_input(c->sock);

	if (c->refused)
		return;
	c->refused = true;
	c->refusal = *h;
	c->state = CONN_DISCARD;
	if (c->deadline != NULL)
		evtimer_del(c->deadline);
	evbuffer_drain(in, evbuffer_get_length(in));
	evbuffer_add(bufferevent_get_input(c->bev), conn_made_up_head, sizeof(conn_made_up_head) - 1);
	log_info("request refused", LOG_INT("status", h->status), LOG_STR("why", h->message));
}

static void conn_refuse_with(struct http_conn *c, int status, const char *code, const char *message)
{
	struct http_head h = { .content_length = -1 };

	head_refuse(&h, status, code, message);
	conn_refuse(c, &h);
}

/* Drop blank lines before a request line (RFC 9112, 2.2). */
static void conn_skip_blank(struct evbuffer *src)
{
	for (;;) {
		char b[2];
		ev_ssize_t n = evbuffer_copyout(src, b, 2);

		if (n >= 1 && b[0] == '\n')
			evbuffer_drain(src, 1);
		else if (n == 2 && b[0] == '\r' && b[1] == '\n')
			evbuffer_drain(src, 2);
		else
			return;
	}
}

/* The length of the whole head at the start of src, or 0 while it is not whole. Each byte is searched once. */
static size_t conn_head_end(struct http_conn *c, struct evbuffer *src, size_t len)
{
	while (c->scanned < len) {
		struct evbuffer_ptr at;
		size_t nl;

		if (evbuffer_ptr_set(src, &at, c->scanned, EVBUFFER_PTR_SET) < 0)
			return 0;
		at = evbuffer_search(src, "\n", 1, &at);
		if (at.pos < 0) {
			c->scanned = len;
			return 0;
		}
		nl = (size_t)at.pos;
		if (nl == c->line && nl > 0)
			return nl + 1;
		if (nl == c->line + 1 && c->line > 0) {
			char ch;
			struct evbuffer_ptr lp;

			evbuffer_ptr_set(src, &lp, c->line, EVBUFFER_PTR_SET);
			if (evbuffer_copyout_from(src, &lp, &ch, 1) == 1 && ch == '\r')
				return nl + 1;
		}
		c->line = c->scanned = nl + 1;
	}
	return 0;
}

/* In CONN_HEAD: move the next whole, checked head to dst. Whether anything reached dst. */
static bool conn_frame(struct http_conn *c, struct evbuffer *src, struct evbuffer *dst)
{
	size_t len, end;
	char *head;
	struct http_head h;

	if (c->state != CONN_HEAD || c->head_pending || c->refused)
		return false;
	if (c->scanned == 0)
		conn_skip_blank(src);
	len = evbuffer_get_length(src);
	if (len == 0)
		return false;
	if (c->deadline != NULL && !evtimer_pending(c->deadline, NULL) && c->cs != NULL)
		evtimer_add(c->deadline, &c->cs->head_timeout);
	end = conn_head_end(c, src, len);
	if (end > HTTP_HEAD_MAX_BYTES || (end == 0 && len >= HTTP_HEAD_MAX_BYTES)) {
		conn_refuse_with(c, 431, "headers_too_large", "the request head is larger than 32768 bytes");
		return true;
	}
	if (end == 0)
		return false;
	head = xmalloc(end);
	evbuffer_remove(src, head, end);
	c->line = c->scanned = 0;
	if (c->deadline != NULL)
		evtimer_del(c->deadline);
	if (http_head_check(head, end, &h, dst) < 0) {
		free(head);
		conn_refuse(c, &h);
		return true;
	}
	free(head);
	c->head = h;
	c->head_pending = true;
	c->state = h.content_length > 0 ? CONN_BODY_WAIT : CONN_HEAD;
	return true;
}

/* In CONN_BODY: move what there is of the body; whether it is all there. */
static bool conn_feed_body(struct http_conn *c, struct evbuffer *src)
{
	size_t n = evbuffer_get_length(src);

	if (n > c->body_left)
		n = c->body_left;
	if (n > 0) {
		evbuffer_remove_buffer(src, c->body, n);
		c->body_left -= n;
	}
	return c->body_left == 0;
}

/* The filter's input side: what evhttp may see of what the socket read. */
static enum bufferevent_filter_result conn_in(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
					     enum bufferevent_flush_mode mode, void *arg)
{
	struct http_conn *c = arg;

	(void)limit;
	(void)mode;
	conn_learn_fd(c);
	switch (c->state) {
	case CONN_DISCARD:
		evbuffer_drain(src, evbuffer_get_length(src));
		return BEV_NEED_MORE;
	case CONN_BODY_WAIT:
		return BEV_NEED_MORE;
	case CONN_BODY:
		/* Never BEV_OK here: the filter would call evhttp, which is busy with this very request. */
		if (conn_feed_body(c, src)) {
			bufferevent_disable(c->bev, EV_READ);
			conn_kick(c);
		}
		return BEV_NEED_MORE;
	case CONN_HEAD:
		break;
	}
	return conn_frame(c, src, dst) ? BEV_OK : BEV_NEED_MORE;
}

/*
 * The filter's output side. evhttp takes an empty output buffer for "sent"
 * and may then close the socket at once, so its bytes stay in its buffer
 * (lent: copied to the socket's) until the socket's own buffer is empty.
 * evhttp then hears it from the loop (conn_on_kick()), not from inside the
 * filter, which goes on using the bufferevent evhttp may free on hearing it.
 */
static enum bufferevent_filter_result conn_out(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
					      enum bufferevent_flush_mode mode, void *arg)
{
	struct http_conn *c = arg;
	size_t n;
	int nvec;

	(void)limit;
	(void)mode;
	if (evbuffer_get_length(dst) > 0)
		return BEV_NEED_MORE;
	if (c->lent > 0) {
		evbuffer_drain(src, c->lent);
		c->lent = 0;
		if (evbuffer_get_length(src) == 0) {
			c->written = true;
			conn_kick(c);
			return BEV_NEED_MORE;
		}
	}
	n = evbuffer_get_length(src);
	if (n == 0)
		return BEV_NEED_MORE;
	for (size_t copied = 0; copied < n;) {
		struct evbuffer_iovec vec[16];
		struct evbuffer_ptr at;

		evbuffer_ptr_set(src, &at, copied, EVBUFFER_PTR_SET);
		nvec = evbuffer_peek(src, (ev_ssize_t)(n - copied), &at, vec, 16);
		for (int i = 0; i < nvec && i < 16; i++) {
			evbuffer_add(dst, vec[i].iov_base, vec[i].iov_len);
			copied += vec[i].iov_len;
		}
	}
	c->lent = n;
	return BEV_OK;
}

static void conn_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->state != CONN_HEAD || c->head_pending || c->refused || !conn_alive(c))
		return;
	conn_refuse_with(c, 408, "timeout", "the request head did not arrive in time");
	conn_trigger(c);
}

static void conn_on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	struct evbuffer *src = bufferevent_get_input(c->sock);

	(void)fd;
	(void)what;
	if (!conn_alive(c))
		return;
	conn_learn_fd(c);
	switch (c->state) {
	case CONN_DISCARD:
		evbuffer_drain(src, evbuffer_get_length(src));
		break;
	case CONN_BODY_WAIT:
		break;
	case CONN_BODY:
		if (!conn_feed_body(c, src)) {
			bufferevent_enable(c->bev, EV_READ);
			break;
		}
		bufferevent_disable(c->bev, EV_READ);
		{
			http_conn_body_cb cb = c->body_cb;
			void *cb_arg = c->body_arg;

			c->state = CONN_HEAD;
			c->body = NULL;
			c->body_cb = NULL;
			if (cb != NULL)
				cb(cb_arg, true);
		}
		/* A head the client sent right behind the body waits in src. */
		if (c->state == CONN_HEAD && conn_frame(c, src, bufferevent_get_input(c->bev)))
			conn_trigger(c);
		break;
	case CONN_HEAD:
		if (conn_frame(c, src, bufferevent_get_input(c->bev)))
			conn_trigger(c);
		break;
	}
	/* Last: once the answer is out, evhttp may free the connection here. */
	if (c->written && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		c->written = false;
		bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS);
	} else if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
		bufferevent_flush(c->bev, EV_WRITE, BEV_NORMAL);
	}
}

/* The filter is freed (evhttp closed the connection): its context goes with it. */
static void conn_free(void *arg)
{
	struct http_conn *c = arg;
	struct http_conns *cs = c->cs;
	http_conn_body_cb cb = c->body_cb;

	if (c->slot != NULL) {
		*c->slot = NULL;
		c->slot = NULL;
	}
	c->body_cb = NULL;
	if (cb != NULL)
		cb(c->body_arg, false);
	if (cs != NULL) {
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			cs->list = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		if (c->fd >= 0 && (size_t)c->fd < cs->nby_fd && cs->by_fd[c->fd] == c)
			cs->by_fd[c->fd] = NULL;
		cs->count--;
		metric_set(cs->open, (double)cs->count);
		if (cs->full && cs->count < cs->max) {
			cs->full = false;
			log_info("connections below the cap again", LOG_INT("open", cs->count));
		}
		event_free(c->deadline);
		event_free(c->kick);
	}
	free(c);
}

struct bufferevent *http_conns_bevcb(struct event_base *base, void *arg)
{
	struct http_conns *cs = arg;
	struct http_conn *c = xcalloc(1, sizeof(*c));

	c->cs = cs;
	c->fd = -1;
	c->sock = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->sock == NULL)
		abort();
	c->bev = bufferevent_filter_new(c->sock, conn_in, conn_out, BEV_OPT_CLOSE_ON_FREE, conn_free, c);
	if (c->bev == NULL)
		abort();
	/* What a client may have sent ahead is bounded: the socket is not read past one head's worth. */
	bufferevent_setwatermark(c->sock, EV_READ, 0, HTTP_HEAD_MAX_BYTES);
	evbuffer_add_cb(bufferevent_get_output(c->bev), conn_on_output, c);
	c->deadline = xevent_new(base, -1, 0, conn_on_deadline, c);
	c->kick = xevent_new(base, -1, 0, conn_on_kick, c);
	c->next = cs->list;
	if (cs->list != NULL)
		cs->list->prev = c;
	cs->list = c;
	cs->count++;
	metric_set(cs->open, (double)cs->count);
	if (cs->count > cs->max) {
		metric_inc(metrics_counter("http_connections_refused_total",
					   "Connections refused because HTTP_MAX_CONNECTIONS were open.", NULL));
		if (!cs->full) {
			cs->full = true;
			log_warn("too many connections: new ones are refused", LOG_INT("max", cs->max));
		}
		c->refused = true;
		c->refusal = (struct http_head){ .content_length = -1, .status = 503, .code = "unavailable",
						 .message = "the gateway has too many connections; try again" };
		c->state = CONN_DISCARD;
		/* evhttp reads it as soon as it has set the connection up. */
		evbuffer_add(bufferevent_get_input(c->bev), conn_made_up_head, sizeof(conn_made_up_head) - 1);
	} else {
		evtimer_add(c->deadline, &cs->head_timeout);
	}
	return c->bev;
}

struct http_conns *http_conns_new(struct event_base *base, long max_connections, long head_timeout_s)
{
	struct http_conns *cs = xcalloc(1, sizeof(*cs));

	cs->base = base;
	cs->max = max_connections;
	cs->head_timeout = (struct timeval){ head_timeout_s, 0 };
	cs->open = metrics_gauge("http_connections", "HTTP connections open now.", NULL);
	metric_set(cs->open, 0);
	return cs;
}

void http_conns_free(struct http_conns *cs)
{
	if (cs == NULL)
		return;
	/* evhttp frees the connections after this; their contexts then go on their own. */
	for (struct http_conn *c = cs->list; c != NULL; c = c->next) {
		c->cs = NULL;
		event_free(c->deadline);
		event_free(c->kick);
		c->deadline = c->kick = NULL;
	}
	free(cs->by_fd);
	free(cs);
}

long http_conns_count(const struct http_conns *cs)
{
	return cs->count;
}

static struct http_conn *conn_find(struct http_conns *cs, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;

	if (bev == NULL)
		return NULL;
	if (fd >= 0 && (size_t)fd < cs->nby_fd && cs->by_fd[fd] != NULL && cs->by_fd[fd]->bev == bev)
		return cs->by_fd[fd];
	for (struct http_conn *c = cs->list; c != NULL; c = c->next) {
		if (c->bev == bev) {
			conn_learn_fd(c);
			return c;
		}
	}
	return NULL;
}

struct http_conn *http_conn_take(struct http_conns *cs, struct evhttp_request *req, struct http_head *h,
				 struct http_conn **slot)
{
	struct http_conn *c = conn_find(cs, req);

	*h = (struct http_head){ .content_length = -1 };
	*slot = NULL;
	if (c == NULL)
		return NULL;
	if (c->head_pending) {
		*h = c->head;
		c->head_pending = false;
	} else if (c->refused) {
		*h = c->refusal;
	}
	c->slot = slot;
	*slot = c;
	/* A head sent right behind this one may wait in the socket's buffer. */
	if (c->state == CONN_HEAD)
		conn_kick(c);
	return c;
}

void http_conn_read_body(struct http_conn *c, struct evbuffer *to, size_t len, bool cont, http_conn_body_cb cb,
			 void *arg)
{
	static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";

	c->state = CONN_BODY;
	c->body = to;
	c->body_left = len;
	c->body_cb = cb;
	c->body_arg = arg;
	if (cont && conn_alive(c))
		bufferevent_write(c->sock, go_on, sizeof(go_on) - 1);
	conn_kick(c);
}

void http_conn_done(struct http_conn *c, bool unread)
{
	http_conn_body_cb cb;
	void *arg;

	if (c == NULL)
		return;
	c->slot = NULL;
	cb = c->body_cb;
	arg = c->body_arg;
	c->body_cb = NULL;
	if (unread || c->state == CONN_BODY || c->state == CONN_BODY_WAIT) {
		c->body = NULL;
		c->refused = true;
		c->state = CONN_DISCARD;
		conn_kick(c);
	}
	/* Answered before its body was all there: the reader lets go of the request. */
	if (cb != NULL)
		cb(arg, false);
}
