/*
 * compose: the MIME message of one mail, built with libcurl's curl_mime.
 *
 *	multipart/mixed
 *	  multipart/alternative
 *	    text/plain; charset=utf-8       quoted-printable
 *	    text/html; charset=utf-8        quoted-printable
 *	  text/calendar; method=...; charset=utf-8, attachment invite.ics, base64
 *
 * curl_mime writes the boundaries (random, so no value can fake one) and the
 * transfer encodings, which keep every line within SMTP's limits whatever
 * the text holds. This module only supplies header values that are already
 * one clean line each (header.h) and bodies whose line ends it normalises to
 * CRLF.
 */
#ifndef MAILER_COMPOSE_H
#define MAILER_COMPOSE_H

#include <time.h>

#include <curl/curl.h>

struct compose_mail {
	const char *from;		/* From: value, e.g. "Calendar Bot <calendar@example.com>" */
	const char *to;			/* To: value from header_mailbox() */
	const char *subject;		/* Subject: value from header_value() */
	const char *message_id;		/* "<...@...>" */
	time_t date;
	const char *action;		/* X-Meeting-Action */
	const char *meeting_id;		/* X-Meeting-Id, or NULL */
	const char *lead_id;		/* X-Lead-Id, or NULL */
	const char *conflict;		/* X-Meeting-Conflict ("yes": booked over busy time), or NULL */
	const char *text;		/* plain body, LF line ends */
	const char *html;		/* HTML body, LF line ends */
	const char *ics;		/* VCALENDAR text, or NULL for a mail without one */
	const char *ics_method;		/* "REQUEST" or "CANCEL" */
};

struct compose;

/*
 * Put the headers and the MIME body of mail on easy (CURLOPT_HTTPHEADER and
 * CURLOPT_MIMEPOST, which curl uses for SMTP). The result owns what the
 * handle points at: free it with compose_free() only after
 * curl_easy_cleanup(easy). NULL (logged) when curl refuses an option.
 */
struct compose *compose_attach(CURL *easy, const struct compose_mail *mail);

/* compose_free(NULL) is a no-op. */
void compose_free(struct compose *c);

#endif
