/*
 * header: header values, addresses, Message-ID and Date (see header.h).
 */
#include "header.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rfc2047.h"
#include "text.h"
#include "xmalloc.h"

#define HEADER_NAME_MAX 100
#define HEADER_LOCAL_MAX 64
#define HEADER_ADDRESS_MAX 254

char *header_value(const char *s, size_t max)
{
	char *line = text_clean(s, false);
	char *out;

	text_cut_utf8(line, max);
	out = rfc2047_encode(line);
	free(line);
	return out;
}

/* RFC 5322 atext: what an atom (and so a dot-atom local part) may hold. */
static bool header_is_atext(char c)
{
	return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool header_domain_ok(const char *d)
{
	size_t label = 0;
	int dots = 0;

	if (*d == '\0')
		return false;
	for (const char *p = d; *p; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			dots++;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-')
			return false;
		if (label == 0 && *p == '-')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && d[strlen(d) - 1] != '-' && dots > 0;
}

char *header_address(const char *raw)
{
	const char *start, *end, *at = NULL;
	size_t len;

	if (raw == NULL)
		return NULL;
	start = raw;
	while (*start == ' ' || *start == '\t')
		start++;
	end = start + strlen(start);
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	len = (size_t)(end - start);
	if (len == 0 || len > HEADER_ADDRESS_MAX)
		return NULL;
	for (const char *p = start; p < end; p++) {
		if (*p == '@') {
			if (at != NULL)
				return NULL;
			at = p;
		} else if (*p != '.' && !header_is_atext(*p)) {
			return NULL;
		}
	}
	if (at == NULL || at == start || at - start > HEADER_LOCAL_MAX || *start == '.' || at[-1] == '.')
		return NULL;
	for (const char *p = start; p < at; p++)
		if (p[0] == '.' && p[1] == '.')
			return NULL;
	{
		char *addr = xstrndup(start, len);

		if (!header_domain_ok(addr + (at - start) + 1)) {
			free(addr);
			return NULL;
		}
		return addr;
	}
}

char *header_mailbox(const char *name, const char *address)
{
	char *clean = text_clean(name, false);
	char *out, *phrase, *o;
	bool atoms = true;

	text_cut_utf8(clean, HEADER_NAME_MAX);
	if (*clean == '\0') {
		free(clean);
		return xstrdup(address);
	}
	for (const char *p = clean; *p && atoms; p++)
		atoms = *p == ' ' || header_is_atext(*p);
	if (!text_is_printable_ascii(clean) || strstr(clean, "=?") != NULL) {
		phrase = rfc2047_encode(clean);
	} else if (atoms) {
		phrase = xstrdup(clean);
	} else {
		/* A quoted string: only the quote and the backslash need escaping. */
		phrase = o = xmalloc(strlen(clean) * 2 + 3);
		*o++ = '"';
		for (const char *p = clean; *p; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
		*o = '\0';
	}
	out = xasprintf("%s <%s>", phrase, address);
	free(phrase);
	free(clean);
	return out;
}

int header_parse_mailbox(const char *value, char **name, char **address)
{
	const char *lt = strrchr(value, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;
	char *n;
	size_t len;

	*name = NULL;
	if (lt == NULL) {
		*address = header_address(value);
		return *address ? 0 : -1;
	}
	if (gt == NULL || gt[1 + strspn(gt + 1, " \t")] != '\0')
		return -1;
	n = xstrndup(lt + 1, (size_t)(gt - lt - 1));
	*address = header_address(n);
	free(n);
	if (*address == NULL)
		return -1;
	n = xstrndup(value, (size_t)(lt - value));
	len = strlen(n);
	while (len > 0 && (n[len - 1] == ' ' || n[len - 1] == '\t'))
		n[--len] = '\0';
	if (len >= 2 && n[0] == '"' && n[len - 1] == '"') {
		memmove(n, n + 1, len - 2);
		n[len - 2] = '\0';
	}
	if (n[strspn(n, " \t")] == '\0')
		free(n);
	else
		*name = n;
	return 0;
}

char *header_message_id(const char *job_id, const char *domain)
{
	unsigned char hash[16];
	char hex[sizeof(hash) * 2 + 1];

	crypto_generichash(hash, sizeof(hash), (const unsigned char *)job_id, strlen(job_id), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	return xasprintf("<%s@%s>", hex, domain);
}

void header_date(time_t t, char *buf, size_t size)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	/* Names by hand: strftime's follow the locale, and a header must be English. */
	gmtime_r(&t, &tm);
	snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
