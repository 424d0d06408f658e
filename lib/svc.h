/*
 * svc: what every service process does around its event loop.
 *
 * SIGPIPE is ignored (a peer closing a socket is an error return, not a
 * death), SIGTERM and SIGINT ask the service to stop gracefully through a
 * callback on the loop, and a second signal forces the loop to exit.
 */
#ifndef SVC_H
#define SVC_H

struct event_base;
struct svc_signals;

typedef void (*svc_stop_cb)(void *arg);

/* The caller frees the result with svc_signals_free() before the base. */
struct svc_signals *svc_signals_new(struct event_base *base, svc_stop_cb stop, void *arg);
/* svc_signals_free(NULL) is a no-op. */
void svc_signals_free(struct svc_signals *sig);

#endif
