/*
 * httpc: HTTP(S) client on the event loop (libcurl's multi-socket API).
 *
 * One curl multi handle per process, its sockets and timer driven by the
 * libevent loop, so a worker keeps hundreds of requests in flight on one
 * thread and shares connections (and HTTP/2 streams) between them. Every
 * transfer has a connect and a total timeout. The same machinery drives any
 * prepared easy handle through httpc_add_easy(), which is how the mailer
 * sends SMTP.
 */
#ifndef HTTPC_H
#define HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

struct event_base;
struct httpc;

struct httpc_request {
	const char *method;		/* "GET", "POST", "PATCH", "PUT", "DELETE" */
	const char *url;
	const char *const *headers;	/* NULL-terminated "Name: value" strings; may be NULL */
	const char *body;		/* may be NULL */
	size_t body_len;
	long timeout_ms;		/* whole transfer; 0 means 30000 */
	long connect_timeout_ms;	/* 0 means 5000 */
};

struct httpc_response {
	long status;		/* HTTP status; 0 when no response arrived */
	CURLcode result;	/* CURLE_OK unless the transfer itself failed */
	const char *error;	/* curl's explanation when result != CURLE_OK, else NULL */
	const char *body;	/* NUL-terminated (also when empty); body_len bytes */
	size_t body_len;
	long retry_after_s;	/* Retry-After in seconds, or -1 when absent */
	double seconds;		/* total time of the transfer */
};

/* *response lives only for the duration of the callback. */
typedef void (*httpc_done_cb)(const struct httpc_response *response, void *arg);

/*
 * For httpc_add_easy(): the transfer finished with result. The callback owns
 * easy from then on and must curl_easy_cleanup() it (after which it may free
 * whatever the handle pointed at: mime parts, header lists).
 */
typedef void (*httpc_easy_cb)(CURL *easy, CURLcode result, void *arg);

/*
 * The caller frees the client with httpc_free(). max_connections caps the
 * connections open at once (0: no cap); as many (or 256 without a cap) stay
 * open idle for reuse.
 */
struct httpc *httpc_new(struct event_base *base, long max_connections);

/*
 * Abort every transfer in flight (their callbacks run with
 * CURLE_ABORTED_BY_CALLBACK) and release the multi handle. Must run before
 * the event base is freed. httpc_free(NULL) is a no-op.
 */
void httpc_free(struct httpc *client);

/* The event base the client runs on, for callers that need timers beside their requests. */
struct event_base *httpc_base(const struct httpc *client);

/*
 * Start a request. Everything in *req is copied, so the caller may free it at
 * once. done is called exactly once, never from inside httpc_send(). Returns
 * 0, or -1 when curl refuses the request (done is then not called).
 */
int httpc_send(struct httpc *client, const struct httpc_request *req, httpc_done_cb done, void *arg);

/*
 * Drive an easy handle the caller prepared (CURLOPT_URL and the rest). httpc
 * sets CURLOPT_PRIVATE, so the caller must not. Returns 0 (done will be
 * called exactly once, later) or -1 (the caller still owns easy).
 */
int httpc_add_easy(struct httpc *client, CURL *easy, httpc_easy_cb done, void *arg);

/* Transfers in flight. */
unsigned httpc_in_flight(const struct httpc *client);

#endif
