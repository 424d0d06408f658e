/*
 * form: application/x-www-form-urlencoded bodies and query strings.
 *
 * evhttp_parse_query_str() refuses a whole query when one pair lacks '='
 * and leaves keys undecoded, while browsers, curl and OAuth libraries send
 * both; Google accepts them, so the stand-in parses pairs itself: '&'
 * separates, the first '=' splits, '+' is a space, and both halves are
 * percent-decoded.
 */
#include "standin.h"

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

struct form_pair {
	char *key;
	char *value;
};

struct form {
	struct form_pair *pairs;
	size_t n;
};

static int form_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A stray '%' stays as it is, as browsers leave it. */
char *form_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < len && form_hex(s[i + 1]) >= 0 && form_hex(s[i + 2]) >= 0) {
			out[o++] = (char)(form_hex(s[i + 1]) * 16 + form_hex(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

struct form *form_parse(const char *s, size_t len)
{
	struct form *f = xcalloc(1, sizeof(*f));
	size_t i = 0;

	while (s != NULL && i < len) {
		size_t end = i, eq;

		while (end < len && s[end] != '&')
			end++;
		for (eq = i; eq < end && s[eq] != '='; eq++)
			;
		if (end > i) {
			f->pairs = xreallocarray(f->pairs, f->n + 1, sizeof(*f->pairs));
			f->pairs[f->n].key = form_decode(s + i, eq - i);
			f->pairs[f->n].value = eq < end ? form_decode(s + eq + 1, end - eq - 1) : xstrdup("");
			f->n++;
		}
		i = end + 1;
	}
	return f;
}

void form_free(struct form *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free(f->pairs[i].key);
		free(f->pairs[i].value);
	}
	free(f->pairs);
	free(f);
}

const char *form_get_nth(const struct form *f, const char *key, size_t nth)
{
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->pairs[i].key, key) == 0 && nth-- == 0)
			return f->pairs[i].value;
	}
	return NULL;
}

const char *form_get(const struct form *f, const char *key)
{
	return form_get_nth(f, key, 0);
}
