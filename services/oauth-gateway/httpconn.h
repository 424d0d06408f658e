/*
 * httpconn: the guard between the gateway's sockets and evhttp.
 *
 * libevent 2.1's evhttp reads a whole request, body included, before it
 * tells anyone about it; its limits are per read, it keeps no count of
 * connections and it answers protocol errors with HTML pages of its own.
 * So every accepted socket gets a bufferevent filter of ours (through
 * evhttp_set_bevcb) that stands between the socket and evhttp:
 *
 * - It holds each request head back until the head is whole, then checks
 *   it (http_head_check()): request line, header syntax, one Content-Length
 *   at most, no Transfer-Encoding, an Expect it understands, at most
 *   HTTP_HEAD_MAX_BYTES. Only a head that passes reaches evhttp, and then
 *   without its Content-Length, so evhttp hands it to the server's callback
 *   before any of the body is read. The callback routes and authenticates
 *   from the head and only then asks for the body (http_conn_read_body()),
 *   which the filter moves into the request as it arrives.
 * - The head has a deadline (HTTP_HEADER_TIMEOUT) from the connection's
 *   start, or from the first byte of a later request on a kept-alive one.
 * - Connections are counted; one over HTTP_MAX_CONNECTIONS is refused.
 * - A refusal here (a bad or oversize head, a head that took too long, a
 *   connection over the cap) puts a made-up head of its own before evhttp
 *   ("GET / HTTP/1.1", Connection: close); the server's callback takes the
 *   refusal (http_conn_take()) and answers it in the API's JSON error shape,
 *   and from then on whatever the client sends is dropped until evhttp
 *   closes the connection after the answer.
 *
 * The filter also holds evhttp's output until the socket has written it,
 * so that evhttp, which closes a "Connection: close" connection as soon as
 * its output buffer is empty, never closes it before the answer has left.
 */
#ifndef HTTPCONN_H
#define HTTPCONN_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct evbuffer;
struct evhttp_request;

/* The longest request head (request line and headers) accepted; beyond it, 431. */
#define HTTP_HEAD_MAX_BYTES (32 * 1024)

/* What a request head says, or why it is refused. */
struct http_head {
	unsigned method;		/* EVHTTP_REQ_*; 0 when not known */
	long long content_length;	/* -1: none */
	bool expect_continue;		/* an HTTP/1.1 "Expect: 100-continue" */
	int status;			/* 0: acceptable; else the refusal's status, code and message */
	const char *code;
	const char *message;
};

/*
 * Check the len bytes of a whole request head (request line, header lines,
 * the empty line) into *h. 0 when it is acceptable, and then the head as
 * evhttp is to see it (line ends made CRLF; Content-Length, Transfer-Encoding
 * and Expect left out) is added to out (may be NULL); -1 with h->status,
 * code and message saying why not.
 */
int http_head_check(const char *head, size_t len, struct http_head *h, struct evbuffer *out);

struct http_conns;
struct http_conn;

/* Called once per http_conn_read_body(): complete, or false when the client went away first. */
typedef void (*http_conn_body_cb)(void *arg, bool complete);

/*
 * A guard for an evhttp server on base: at most max_connections at once,
 * head_timeout_s for each request head. Install http_conns_bevcb with it as
 * the server's bufferevent callback. Free it with http_conns_free() before
 * evhttp_free().
 */
struct http_conns *http_conns_new(struct event_base *base, long max_connections, long head_timeout_s);
void http_conns_free(struct http_conns *cs);
struct bufferevent *http_conns_bevcb(struct event_base *base, void *arg);

/* How many connections are open now. */
long http_conns_count(const struct http_conns *cs);

/*
 * The connection req came on and the facts of its head (or the refusal the
 * guard made up); NULL when req did not come through the guard (h then
 * says nothing). *slot points at the connection until http_conn_done() or
 * the connection goes away (then *slot becomes NULL).
 */
struct http_conn *http_conn_take(struct http_conns *cs, struct evhttp_request *req, struct http_head *h,
				 struct http_conn **slot);

/*
 * Read the len bytes of the current request's body into to, then call
 * cb(arg, true); or cb(arg, false) when the connection closes first. With
 * cont, tell the client to go on (100 Continue) first.
 */
void http_conn_read_body(struct http_conn *c, struct evbuffer *to, size_t len, bool cont, http_conn_body_cb cb,
			 void *arg);

/*
 * The request that took the last head is answered. With unread, its body
 * (or part of it) was never read: the connection takes no more requests and
 * drops what still comes (the answer must carry Connection: close).
 * http_conn_done(NULL, ...) is a no-op.
 */
void http_conn_done(struct http_conn *c, bool unread);

#endif
