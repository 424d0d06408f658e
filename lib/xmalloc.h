/*
 * xmalloc: allocation that cannot fail (memory, and libevent events).
 *
 * Running out of memory is not a condition these services can recover from
 * in any useful way, so every allocation goes through here and aborts with a
 * message instead of handing NULL to code that would have to check it.
 * Everything returned is owned by the caller and released with free().
 */
#ifndef XMALLOC_H
#define XMALLOC_H

#include <stddef.h>

#include <event2/event.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
/* printf into a fresh string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* libevent's event_new(), which fails only when out of memory. The caller frees it with event_free(). */
struct event *xevent_new(struct event_base *base, evutil_socket_t fd, short what, event_callback_fn cb, void *arg);

#endif
