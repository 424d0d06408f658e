/*
 * xmalloc: allocation wrappers that abort on exhaustion (see xmalloc.h).
 */
#include "xmalloc.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static _Noreturn void xmalloc_die(size_t size)
{
	/* No logging module here: it may itself need memory. */
	fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory\",\"bytes\":%zu}\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		xmalloc_die(size);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		xmalloc_die(nmemb * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (p == NULL)
		xmalloc_die(size);
	return p;
}

void *xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		xmalloc_die(SIZE_MAX);
	return xrealloc(ptr, nmemb * size);
}

char *xstrdup(const char *s)
{
	return xmemdup(s, strlen(s) + 1);
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void *xmemdup(const void *src, size_t n)
{
	void *p = xmalloc(n);
	if (n > 0)
		memcpy(p, src, n);
	return p;
}

/*
 * Measured first and written once into a block of exactly its size: vasprintf()
 * grows its buffer with realloc() and leaves the smaller copies in the heap,
 * which for "Authorization: Bearer <token>" would be the token's first half.
 */
char *xasprintf(const char *fmt, ...)
{
	va_list ap, again;
	char *s;
	int n;

	va_start(ap, fmt);
	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		xmalloc_die(0);
	s = xmalloc((size_t)n + 1);
	if (vsnprintf(s, (size_t)n + 1, fmt, again) != n)
		abort();
	va_end(again);
	return s;
}

void xwipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		sodium_memzero(p, n);
}

void xfree_wiped(void *p, size_t n)
{
	if (p == NULL)
		return;
	xwipe(p, n);
	free(p);
}

void xfree_secret(char *s)
{
	if (s != NULL)
		xfree_wiped(s, strlen(s));
}

void *xrealloc_wiped(void *p, size_t used, size_t size)
{
	void *q;

	if (p == NULL)
		return xmalloc(size);
	/* The block is at least this big already: growing in place leaves nothing behind. */
	if (size <= malloc_usable_size(p))
		return p;
	q = xmalloc(size);
	if (used > 0)
		memcpy(q, p, used);
	xfree_wiped(p, malloc_usable_size(p));
	return q;
}

struct event *xevent_new(struct event_base *base, evutil_socket_t fd, short what, event_callback_fn cb, void *arg)
{
	/* event_new fails only on allocation (or a NULL base, a bug): as fatal as xmalloc. */
	struct event *ev = event_new(base, fd, what, cb, arg);

	if (ev == NULL)
		xmalloc_die(0);
	return ev;
}
