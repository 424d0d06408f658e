/*
 * server: the evhttp front door. It binds a loopback address, turns each
 * request into an exchange, finds its handler (admin, OAuth or Calendar),
 * and applies injected faults: latency is an evtimer, so a delayed request
 * never holds up the others and concurrent requests overlap as they would
 * against Google.
 */
#include "standin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>

#include "log.h"
#include "xmalloc.h"

static struct evhttp *server_http;
static struct exchange *server_delayed; /* waiting out injected latency */

static void server_run(struct exchange *ex)
{
	if (ex->fault.status != 0)
		exchange_fault(ex, ex->fault.status, ex->fault.reason[0] != '\0' ? ex->fault.reason : NULL);
	else
		ex->handler(ex);
}

static void server_unlink(struct exchange *ex)
{
	if (ex->prev != NULL)
		ex->prev->next = ex->next;
	else
		server_delayed = ex->next;
	if (ex->next != NULL)
		ex->next->prev = ex->prev;
	ex->prev = ex->next = NULL;
	event_free(ex->timer);
	ex->timer = NULL;
}

static void server_delay_done(evutil_socket_t fd, short what, void *arg)
{
	struct exchange *ex = arg;

	server_unlink(ex);
	server_run(ex);
}

static void server_not_found(struct exchange *ex)
{
	exchange_html(ex, 404,
	              "<!DOCTYPE html><html lang=en><title>Error 404 (Not Found)</title>"
	              "<p><b>404.</b> That’s an error.<p>The requested URL was not found on this server.</html>");
}

static void server_dispatch(struct evhttp_request *req, void *arg)
{
	struct exchange *ex = exchange_new(req);
	struct timeval tv;

	ex->handler = server_not_found;
	if (!admin_route(ex) && !authorize_route(ex) && !token_route(ex) && !oauth_route(ex))
		calendar_route(ex);
	if (ex->family == FAMILY_OAUTH || ex->family == FAMILY_API)
		faults_decide(ex->method_name, ex->path, &ex->fault);
	if (ex->fault.delay_ms <= 0) {
		server_run(ex);
		return;
	}
	ex->timer = evtimer_new(exchange_base, server_delay_done, ex);
	ex->next = server_delayed;
	if (server_delayed != NULL)
		server_delayed->prev = ex;
	server_delayed = ex;
	tv.tv_sec = ex->fault.delay_ms / 1000;
	tv.tv_usec = ex->fault.delay_ms % 1000 * 1000;
	evtimer_add(ex->timer, &tv);
}

/* Only loopback: the stand-in hands out tokens to anyone who asks. */
static int server_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127 ? 0 : -1;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ? 0 : -1;
	return -1;
}

int server_start(struct event_base *base, const char *host, int port, char **url_out)
{
	struct evhttp_bound_socket *bound;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int bound_port;

	if (server_loopback(host) < 0) {
		log_error("refusing to listen on a non-loopback address", LOG_STR("host", host));
		return -1;
	}
	exchange_base = base;
	server_http = evhttp_new(base);
	evhttp_set_allowed_methods(server_http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                            EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_max_body_size(server_http, STANDIN_MAX_BODY);
	evhttp_set_max_headers_size(server_http, 64 * 1024);
	/*
	 * evhttp answers an oversized body with 413 itself, without calling us;
	 * reading the body to its end first makes the client see it, not a reset.
	 */
	evhttp_set_flags(server_http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_gencb(server_http, server_dispatch, NULL);
	bound = evhttp_bind_socket_with_handle(server_http, host, (ev_uint16_t)port);
	if (bound == NULL) {
		log_error("cannot listen", LOG_STR("host", host), LOG_INT("port", port));
		evhttp_free(server_http);
		server_http = NULL;
		return -1;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sslen) < 0) {
		log_error("getsockname failed");
		evhttp_free(server_http);
		server_http = NULL;
		return -1;
	}
	if (ss.ss_family == AF_INET6) {
		bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		*url_out = xasprintf("http://[%s]:%d", host, bound_port);
	} else {
		bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		*url_out = xasprintf("http://%s:%d", host, bound_port);
	}
	return 0;
}

void server_stop(void)
{
	/* Answer what is still waiting, so evhttp_free() has no request we hold. */
	while (server_delayed != NULL) {
		struct exchange *ex = server_delayed;

		server_unlink(ex);
		exchange_fault(ex, 503, NULL);
	}
	if (server_http != NULL)
		evhttp_free(server_http);
	server_http = NULL;
}
