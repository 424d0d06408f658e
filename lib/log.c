/*
 * log: structured JSON lines on stderr, with secrets kept out (see log.h).
 *
 * Each line is assembled in memory and written with a single write(2), so
 * lines from several processes sharing a pipe never interleave.
 */
#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "xmalloc.h"

#define LOG_VALUE_MAX 4096	/* longer strings are cut: a log is not a data store */

struct log_buf {
	char *p;
	size_t len;
	size_t cap;
};

static const char *log_service = "unknown";
static enum log_level log_min = LOG_INFO;
static char **log_secrets;
static size_t log_nsecrets;

static const char *const log_level_names[] = { "debug", "info", "warn", "error" };

void log_init(const char *service, enum log_level min_level)
{
	log_service = service;
	log_min = min_level;
}

void log_set_level(enum log_level min_level)
{
	log_min = min_level;
}

int log_level_parse(const char *name, enum log_level *out)
{
	if (name == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(log_level_names) / sizeof(*log_level_names); i++) {
		if (strcasecmp(name, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(name, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

bool log_enabled(enum log_level level)
{
	return level >= log_min;
}

void log_add_secret(const char *value)
{
	if (value == NULL || strlen(value) < 6)
		return;
	log_secrets = xreallocarray(log_secrets, log_nsecrets + 1, sizeof(*log_secrets));
	log_secrets[log_nsecrets++] = xstrdup(value);
}

void log_shutdown(void)
{
	for (size_t i = 0; i < log_nsecrets; i++)
		free(log_secrets[i]);
	free(log_secrets);
	log_secrets = NULL;
	log_nsecrets = 0;
}

static void log_buf_put(struct log_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 512;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void log_buf_puts(struct log_buf *b, const char *s)
{
	log_buf_put(b, s, strlen(s));
}

/* Length of a valid UTF-8 sequence starting at s (at most n bytes), or 0. */
static size_t log_utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* JSON string body of s[0..n): escapes, and U+FFFD for bytes that are not UTF-8. */
static void log_buf_escape(struct log_buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char tmp[8];

	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		size_t l;

		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			log_buf_put(b, tmp, 2);
			i++;
		} else if (c == '\n') {
			log_buf_put(b, "\\n", 2);
			i++;
		} else if (c == '\r') {
			log_buf_put(b, "\\r", 2);
			i++;
		} else if (c == '\t') {
			log_buf_put(b, "\\t", 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(tmp, sizeof(tmp), "\\u%04x", c);
			log_buf_put(b, tmp, 6);
			i++;
		} else if ((l = log_utf8_len(u + i, n - i)) == 0) {
			log_buf_put(b, "\\ufffd", 6);
			i++;
		} else {
			log_buf_put(b, s + i, l);
			i += l;
		}
	}
}

static bool log_token_char(unsigned char c)
{
	return isalnum(c) || c == '.' || c == '_' || c == '-' || c == '/' || c == '+' || c == '=' || c == '~';
}

/*
 * Mask what looks like a credential inside free text: Google access tokens
 * ("ya29."), refresh tokens ("1//"), "Bearer x" and registered secrets.
 * Returns a new string the caller frees.
 */
static char *log_scrub(const char *s, size_t n)
{
	static const char *const prefixes[] = { "ya29.", "1//", "Bearer ", "bearer " };
	struct log_buf out = { 0 };

	log_buf_put(&out, "", 0);
	for (size_t i = 0; i < n;) {
		bool matched = false;

		for (size_t k = 0; k < sizeof(prefixes) / sizeof(*prefixes) && !matched; k++) {
			size_t pl = strlen(prefixes[k]);
			size_t j = i + pl;

			if (n - i < pl || memcmp(s + i, prefixes[k], pl) != 0)
				continue;
			while (j < n && log_token_char((unsigned char)s[j]))
				j++;
			if (j - (i + pl) < 6)	/* too short to be a token; leave prose alone */
				continue;
			log_buf_put(&out, s + i, pl);
			log_buf_puts(&out, "[redacted]");
			i = j;
			matched = true;
		}
		for (size_t k = 0; k < log_nsecrets && !matched; k++) {
			size_t sl = strlen(log_secrets[k]);

			if (n - i >= sl && memcmp(s + i, log_secrets[k], sl) == 0) {
				log_buf_puts(&out, "[redacted]");
				i += sl;
				matched = true;
			}
		}
		if (!matched)
			log_buf_put(&out, s + i++, 1);
	}
	return out.p;
}

static bool log_key_is_secret(const char *key)
{
	static const char *const words[] = {
		"token", "secret", "password", "passwd", "authorization", "cookie",
		"verifier", "credential", "api_key", "apikey", "private_key",
	};
	char lower[64];
	size_t i;

	if (key == NULL)
		return false;
	for (i = 0; key[i] != '\0' && i < sizeof(lower) - 1; i++)
		lower[i] = (char)tolower((unsigned char)key[i]);
	lower[i] = '\0';
	if (strcmp(lower, "code") == 0 || strcmp(lower, "auth_code") == 0 || strcmp(lower, "oauth_state") == 0)
		return true;
	for (size_t k = 0; k < sizeof(words) / sizeof(*words); k++)
		if (strstr(lower, words[k]) != NULL)
			return true;
	return false;
}

void log_mask_email(const char *email, char *buf, unsigned bufsize)
{
	const char *at;

	if (bufsize == 0)
		return;
	if (email == NULL || (at = strrchr(email, '@')) == NULL || at == email) {
		snprintf(buf, bufsize, "%s", email == NULL ? "" : "***");
		return;
	}
	snprintf(buf, bufsize, "%c***%s", email[0], at);
}

static void log_put_string(struct log_buf *b, const char *s)
{
	size_t n = strnlen(s, LOG_VALUE_MAX + 1);
	bool cut = n > LOG_VALUE_MAX;
	char *clean;

	if (cut)
		n = LOG_VALUE_MAX;
	clean = log_scrub(s, n);
	log_buf_put(b, "\"", 1);
	log_buf_escape(b, clean, strlen(clean));
	if (cut)
		log_buf_puts(b, "...");
	log_buf_put(b, "\"", 1);
	free(clean);
}

static void log_put_field(struct log_buf *b, const struct log_field *f)
{
	char num[64];
	char masked[320];

	log_buf_put(b, ",\"", 2);
	log_buf_escape(b, f->key ? f->key : "?", strlen(f->key ? f->key : "?"));
	log_buf_put(b, "\":", 2);

	if (log_key_is_secret(f->key) && f->type != LOG_FIELD_BOOL && f->type != LOG_FIELD_INT) {
		log_buf_puts(b, "\"[redacted]\"");
		return;
	}
	switch (f->type) {
	case LOG_FIELD_STR:
		if (f->v.s == NULL)
			log_buf_puts(b, "null");
		else
			log_put_string(b, f->v.s);
		break;
	case LOG_FIELD_EMAIL:
		if (f->v.s == NULL) {
			log_buf_puts(b, "null");
			break;
		}
		log_mask_email(f->v.s, masked, sizeof(masked));
		log_put_string(b, masked);
		break;
	case LOG_FIELD_INT:
		snprintf(num, sizeof(num), "%lld", f->v.i);
		log_buf_puts(b, num);
		break;
	case LOG_FIELD_DOUBLE:
		snprintf(num, sizeof(num), "%.6g", f->v.d);
		/* JSON has no inf or nan. */
		log_buf_puts(b, (strchr(num, 'n') || strchr(num, 'i')) ? "null" : num);
		break;
	case LOG_FIELD_BOOL:
		log_buf_puts(b, f->v.i ? "true" : "false");
		break;
	case LOG_FIELD_END:
		break;
	}
}

void log_emit(enum log_level level, const char *msg, ...)
{
	struct log_buf b = { 0 };
	struct timespec ts;
	struct tm tm;
	char stamp[128];
	va_list ap;

	if (level < log_min)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

	log_buf_puts(&b, "{\"ts\":\"");
	log_buf_puts(&b, stamp);
	log_buf_puts(&b, "\",\"level\":\"");
	log_buf_puts(&b, log_level_names[level]);
	log_buf_puts(&b, "\",\"svc\":");
	log_put_string(&b, log_service);
	log_buf_puts(&b, ",\"msg\":");
	log_put_string(&b, msg ? msg : "");

	va_start(ap, msg);
	for (;;) {
		struct log_field f = va_arg(ap, struct log_field);

		if (f.type == LOG_FIELD_END)
			break;
		log_put_field(&b, &f);
	}
	va_end(ap);
	log_buf_put(&b, "}\n", 2);

	for (size_t off = 0; off < b.len;) {
		ssize_t w = write(STDERR_FILENO, b.p + off, b.len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	free(b.p);
}
