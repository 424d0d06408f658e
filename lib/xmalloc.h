/*
 * xmalloc: allocation that cannot fail (memory, and libevent events), and
 * release of memory that held a secret.
 *
 * Running out of memory is not a condition these services can recover from
 * in any useful way, so every allocation goes through here and aborts with a
 * message instead of handing NULL to code that would have to check it.
 * Everything returned is owned by the caller and released with free().
 *
 * A buffer that held a secret (an access or refresh token, a code, a client
 * secret, a request or answer carrying one, an Authorization header) is
 * zeroed before it goes back to the heap, where the next allocation, a core
 * dump or a read past a buffer could otherwise find it. The zeroing is
 * libsodium's sodium_memzero(), which the compiler cannot drop the way it may
 * drop a memset() right before free(). These helpers live here, the lowest
 * module, so httpc and google (which must not depend on the vault) use them
 * too.
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
/* Zero n bytes at p (sodium_memzero). NULL or 0 is a no-op. */
void xwipe(void *p, size_t n);
/* Zero n bytes at p, then free it. xfree_wiped(NULL, n) is a no-op. */
void xfree_wiped(void *p, size_t n);
/* Zero a NUL-terminated secret, then free it. xfree_secret(NULL) is a no-op. */
void xfree_secret(char *s);
/*
 * xrealloc() for a buffer that holds a secret: used bytes of p move to a block
 * of size bytes and the old block is zeroed before it is freed, where
 * realloc() would leave its copy behind when it moves the data. Grows in place
 * when the block is already big enough. xrealloc_wiped(NULL, 0, size) is
 * xmalloc(size).
 */
void *xrealloc_wiped(void *p, size_t used, size_t size);
/* libevent's event_new(), which fails only when out of memory. The caller frees it with event_free(). */
struct event *xevent_new(struct event_base *base, evutil_socket_t fd, short what, event_callback_fn cb, void *arg);

#endif
