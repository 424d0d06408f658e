/*
 * ical: the iCalendar part of a meeting mail (RFC 5545 / iTIP RFC 5546).
 *
 * Calendar clients file a REQUEST under its UID and apply it only when its
 * SEQUENCE is not older than what they hold, so the UID is the Google
 * event's own iCalUID ("<event id>@google.com": the same meeting everywhere,
 * and stable across reschedules, which keep the Google event) and SEQUENCE is
 * the meeting's ical_sequence as of the change the mail reports. libical
 * writes the text: escaping, line folding and CRLF line ends are its job.
 */
#ifndef MAILER_ICAL_H
#define MAILER_ICAL_H

#include <stdbool.h>
#include <stdint.h>

struct ical_event {
	bool cancel;			/* METHOD:CANCEL and STATUS:CANCELLED, else REQUEST and CONFIRMED */
	const char *google_event_id;
	int sequence;
	int64_t start_s, end_s;		/* instants, written in UTC */
	int64_t stamp_s;		/* DTSTAMP: when this message was made */
	const char *summary;		/* untrusted text from here on; NULL or "" leaves a property out */
	const char *description;
	const char *location;
	const char *url;		/* an http(s) URL or NULL */
	const char *organizer_email;	/* checked addresses (header_address()) or NULL */
	const char *organizer_name;
	const char *attendee_email;
	const char *attendee_name;
};

/* The VCALENDAR text, CRLF line ends. The caller frees it with free(). */
char *ical_build(const struct ical_event *ev);

#endif
