/*
 * svc: what every service process does around its event loop.
 *
 * One event loop per process (svc_base_new()). SIGPIPE is ignored (a peer closing a socket is an error return, not a
 * death), SIGTERM and SIGINT ask the service to stop gracefully through a
 * callback on the loop, and a second signal forces the loop to exit.
 */
#ifndef SVC_H
#define SVC_H

struct event_base;
struct svc_signals;

typedef void (*svc_stop_cb)(void *arg);

/*
 * The service's event loop, or exit(1) with a log line: there is no service
 * without one. The caller frees it with event_base_free().
 */
struct event_base *svc_base_new(void);

/* The caller frees the result with svc_signals_free() before the base. */
struct svc_signals *svc_signals_new(struct event_base *base, svc_stop_cb stop, void *arg);
/* svc_signals_free(NULL) is a no-op. */
void svc_signals_free(struct svc_signals *sig);

#endif
