/*
 * compose: headers and MIME parts on a curl handle (see compose.h).
 */
#include "compose.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"
#include "log.h"
#include "xmalloc.h"

struct compose {
	struct curl_slist *headers;
	curl_mime *mime;
};

void compose_free(struct compose *c)
{
	if (c == NULL)
		return;
	curl_slist_free_all(c->headers);
	curl_mime_free(c->mime);
	free(c);
}

/* The quoted-printable encoder keeps a lone LF as "=0A": mail lines end with CRLF. */
static char *compose_crlf(const char *s)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = s; *p; p++)
		n += *p == '\n' ? 2 : 1;
	out = o = xmalloc(n + 1);
	for (const char *p = s; *p; p++) {
		if (*p == '\n' && (p == s || p[-1] != '\r'))
			*o++ = '\r';
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

static bool compose_header(struct compose *c, const char *name, const char *value)
{
	char *line;
	struct curl_slist *next;

	if (value == NULL)
		return true;
	line = xasprintf("%s: %s", name, value);
	next = curl_slist_append(c->headers, line);
	free(line);
	if (next == NULL)
		return false;
	c->headers = next;
	return true;
}

static bool compose_part(curl_mime *mime, const char *data, const char *type, const char *encoder,
			 const char *filename)
{
	curl_mimepart *part = curl_mime_addpart(mime);
	char *body = compose_crlf(data);
	bool ok;

	/* curl_mime_data() keeps its own copy. */
	ok = part != NULL && curl_mime_data(part, body, CURL_ZERO_TERMINATED) == CURLE_OK &&
	     curl_mime_type(part, type) == CURLE_OK && curl_mime_encoder(part, encoder) == CURLE_OK &&
	     (filename == NULL || curl_mime_filename(part, filename) == CURLE_OK);
	free(body);
	return ok;
}

static bool compose_headers(struct compose *c, const struct compose_mail *m)
{
	char date[40];

	header_date(m->date, date, sizeof(date));
	return compose_header(c, "From", m->from) && compose_header(c, "To", m->to) &&
	       compose_header(c, "Subject", m->subject) && compose_header(c, "Date", date) &&
	       compose_header(c, "Message-ID", m->message_id) &&
	       compose_header(c, "Auto-Submitted", "auto-generated") &&
	       compose_header(c, "X-Meeting-Action", m->action) && compose_header(c, "X-Meeting-Id", m->meeting_id) &&
	       compose_header(c, "X-Lead-Id", m->lead_id) && compose_header(c, "X-Meeting-Conflict", m->conflict);
}

static bool compose_body(struct compose *c, CURL *easy, const struct compose_mail *m)
{
	curl_mime *alt;
	curl_mimepart *part;

	c->mime = curl_mime_init(easy);
	alt = curl_mime_init(easy);
	if (c->mime == NULL || alt == NULL) {
		curl_mime_free(alt);
		return false;
	}
	if (!compose_part(alt, m->text, "text/plain; charset=utf-8", "quoted-printable", NULL) ||
	    !compose_part(alt, m->html, "text/html; charset=utf-8", "quoted-printable", NULL)) {
		curl_mime_free(alt);
		return false;
	}
	part = curl_mime_addpart(c->mime);
	/* From here on alt belongs to the top-level mime. */
	if (part == NULL || curl_mime_subparts(part, alt) != CURLE_OK) {
		curl_mime_free(alt);
		return false;
	}
	if (curl_mime_type(part, "multipart/alternative") != CURLE_OK)
		return false;
	if (m->ics != NULL) {
		char *type = xasprintf("text/calendar; method=%s; charset=utf-8", m->ics_method);
		bool ok;

		ok = compose_part(c->mime, m->ics, type, "base64", "invite.ics");
		free(type);
		if (!ok)
			return false;
	}
	return true;
}

struct compose *compose_attach(CURL *easy, const struct compose_mail *mail)
{
	struct compose *c = xcalloc(1, sizeof(*c));

	if (!compose_headers(c, mail) || !compose_body(c, easy, mail) ||
	    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, c->headers) != CURLE_OK ||
	    curl_easy_setopt(easy, CURLOPT_MIMEPOST, c->mime) != CURLE_OK) {
		log_error("curl refused the parts of a mail");
		compose_free(c);
		return NULL;
	}
	return c;
}
