/*
 * text: cleaning and escaping untrusted text (see text.h).
 */
#include "text.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "xmalloc.h"

#define TEXT_REPLACEMENT "\xef\xbf\xbd"

/*
 * Decode one UTF-8 sequence at s (len bytes left). Returns its length and
 * stores the code point, or returns 0 for a byte that does not start a valid
 * sequence (overlong forms, surrogates and values past U+10FFFF included).
 */
static size_t text_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		n = 2, c &= 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, c &= 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

static bool text_is_line_break(uint32_t cp)
{
	return cp == '\n' || cp == '\r' || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

static bool text_is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

char *text_clean(const char *s, bool multiline)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = strlen((const char *)p);
	char *out = xmalloc(len * 3 + 1);
	size_t o = 0;

	while (*p != '\0') {
		uint32_t cp;
		size_t n = text_utf8_decode(p, len, &cp);

		if (n == 0) {
			memcpy(out + o, TEXT_REPLACEMENT, 3);
			o += 3;
			p++, len--;
			continue;
		}
		if (cp == '\r' && p[1] == '\n') {
			p++, len--;
			continue;
		}
		if (text_is_line_break(cp) || cp == '\t') {
			if (!multiline)
				out[o++] = ' ';
			else
				out[o++] = cp == '\t' ? '\t' : '\n';
		} else if (!text_is_control(cp)) {
			memcpy(out + o, p, n);
			o += n;
		}
		p += n, len -= n;
	}
	out[o] = '\0';
	if (!multiline) {
		/* One line reads best with single spaces and no padding. */
		size_t r = 0, w = 0;

		while (out[r] == ' ')
			r++;
		for (; out[r] != '\0'; r++)
			if (out[r] != ' ' || (out[r + 1] != ' ' && out[r + 1] != '\0'))
				out[w++] = out[r];
		out[w] = '\0';
	}
	return out;
}

/* What c becomes in HTML, or NULL when it stays as it is. */
static const char *text_html_entity(char c)
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '"':
		return "&quot;";
	case '\'':
		return "&#39;";
	case '\n':
		return "<br>\n";
	default:
		return NULL;
	}
}

char *text_html_escape(const char *s)
{
	size_t len = 0;
	char *out, *o;

	for (const char *p = s; *p; p++)
		len += text_html_entity(*p) ? strlen(text_html_entity(*p)) : 1;
	out = o = xmalloc(len + 1);
	for (const char *p = s; *p; p++) {
		const char *rep = text_html_entity(*p);

		if (rep == NULL) {
			*o++ = *p;
			continue;
		}
		memcpy(o, rep, strlen(rep));
		o += strlen(rep);
	}
	*o = '\0';
	return out;
}

void text_cut_utf8(char *s, size_t max)
{
	if (strlen(s) <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	s[max] = '\0';
}

bool text_is_printable_ascii(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

bool text_is_web_url(const char *s)
{
	size_t scheme;

	if (s == NULL)
		return false;
	if (strncasecmp(s, "https://", 8) == 0)
		scheme = 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		scheme = 7;
	else
		return false;
	if (s[scheme] == '\0' || s[scheme] == '/')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\'' || *p == '<' || *p == '>' || *p == '\\' ||
		    *p == '`')
			return false;
	return true;
}
