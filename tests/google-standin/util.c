/*
 * util: the small string, time and randomness helpers several modules of
 * the stand-in need (escaping for HTML and URLs, Google's timestamp format,
 * token-shaped random strings).
 */
#include "standin.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "datetime.h"
#include "xmalloc.h"

int64_t util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_format_time(int64_t ms, char *buf, size_t size)
{
	datetime_format_utc(ms / 1000, (int32_t)(ms % 1000), buf, size);
}

char *util_base64url(const unsigned char *bin, size_t len)
{
	size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = xmalloc(cap);

	sodium_bin2base64(out, cap, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return out;
}

char *util_random_token(const char *prefix, size_t nbytes)
{
	unsigned char bin[96];
	char *b64, *out;

	if (nbytes > sizeof(bin))
		nbytes = sizeof(bin);
	randombytes_buf(bin, nbytes);
	b64 = util_base64url(bin, nbytes);
	out = xasprintf("%s%s", prefix, b64);
	free(b64);
	return out;
}

char *util_html_escape(const char *s)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = s; *p != '\0'; p++)
		n += (*p == '&' || *p == '<' || *p == '>' || *p == '"' || *p == '\'') ? 6 : 1;
	out = o = xmalloc(n + 1);
	for (const char *p = s; *p != '\0'; p++) {
		switch (*p) {
		case '&':
			o = stpcpy(o, "&amp;");
			break;
		case '<':
			o = stpcpy(o, "&lt;");
			break;
		case '>':
			o = stpcpy(o, "&gt;");
			break;
		case '"':
			o = stpcpy(o, "&quot;");
			break;
		case '\'':
			o = stpcpy(o, "&#39;");
			break;
		default:
			*o++ = *p;
			break;
		}
	}
	*o = '\0';
	return out;
}

char *util_url_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(strlen(s) * 3 + 1), *o = out;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

char *util_lower(const char *s)
{
	char *out = xstrdup(s);

	for (char *p = out; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

int util_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

bool util_valid_email(const char *s)
{
	const char *at;

	if (s == NULL || strlen(s) > 254)
		return false;
	at = strchr(s, '@');
	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>' || *p == '"' || *p == '/')
			return false;
	}
	return true;
}

bool util_has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	if (list == NULL || n == 0)
		return false;
	for (const char *p = list; *p != '\0';) {
		size_t len;

		while (*p == ' ')
			p++;
		len = strcspn(p, " ");
		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p += len;
	}
	return false;
}

char **util_words(const char *list, size_t *n)
{
	char **words = NULL;

	*n = 0;
	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t len;

		p += strspn(p, " ");
		len = strcspn(p, " ");
		if (len == 0)
			break;
		words = xreallocarray(words, *n + 1, sizeof(*words));
		words[(*n)++] = xstrndup(p, len);
		p += len;
	}
	return words;
}

void util_words_free(char **words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(words[i]);
	free(words);
}

bool util_pkce_verifier_ok(const char *v)
{
	size_t n = strlen(v);

	/* RFC 7636 §4.1: 43 to 128 characters of [A-Za-z0-9-._~]. */
	if (n < 43 || n > 128)
		return false;
	return strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") == n;
}

int util_parse_instant(const char *s, int64_t *epoch_s)
{
	struct datetime dt;

	/* Google wants an offset on timeMin/timeMax; a bare local time is a 400. */
	if (s == NULL || strchr(s, ' ') != NULL || datetime_parse(s, strlen(s), &dt) < 0 || !dt.has_offset)
		return -1;
	*epoch_s = dt.epoch_s;
	return 0;
}
