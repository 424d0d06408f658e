/*
 * svc: signal handling for the services (see svc.h).
 */
#include "svc.h"

#include <signal.h>
#include <stdlib.h>

#include <event2/event.h>

#include "log.h"
#include "xmalloc.h"

struct svc_signals {
	struct event_base *base;
	struct event *term;
	struct event *intr;
	svc_stop_cb stop;
	void *arg;
	int received;
};

static void svc_on_signal(evutil_socket_t signo, short what, void *arg)
{
	struct svc_signals *s = arg;

	(void)what;
	if (s->received++ > 0) {
		log_warn("second signal: exiting now", LOG_INT("signal", signo));
		event_base_loopbreak(s->base);
		return;
	}
	log_info("stopping", LOG_INT("signal", signo));
	s->stop(s->arg);
}

struct svc_signals *svc_signals_new(struct event_base *base, svc_stop_cb stop, void *arg)
{
	struct svc_signals *s = xcalloc(1, sizeof(*s));

	signal(SIGPIPE, SIG_IGN);
	s->base = base;
	s->stop = stop;
	s->arg = arg;
	s->term = evsignal_new(base, SIGTERM, svc_on_signal, s);
	s->intr = evsignal_new(base, SIGINT, svc_on_signal, s);
	evsignal_add(s->term, NULL);
	evsignal_add(s->intr, NULL);
	return s;
}

void svc_signals_free(struct svc_signals *s)
{
	if (s == NULL)
		return;
	event_free(s->term);
	event_free(s->intr);
	free(s);
}

/*
 * With the epoll changelist, libevent applies a loop iteration's event
 * changes in one pass before it waits, so a socket whose interest goes from
 * read to write and back within an iteration costs no epoll_ctl() at all.
 * evhttp toggles every keep-alive connection that way on each request (four
 * epoll_ctl() calls per request without it). The changelist is wrong only for
 * descriptors cloned with dup(), which nothing in these services uses.
 */
struct event_base *svc_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base = NULL;

	if (cfg != NULL) {
		event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		base = event_base_new_with_config(cfg);
		event_config_free(cfg);
	}
	if (base == NULL) {
		log_error("cannot create the event loop");
		exit(1);
	}
	return base;
}
