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
