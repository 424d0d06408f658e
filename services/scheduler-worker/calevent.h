/*
 * calevent: what a booked lead looks like in Google Calendar.
 *
 * Pure functions from a lead to the meeting title, the description and the
 * Calendar event body, kept apart from I/O so they are tested exactly. The
 * title and description are the product's templates (docs/booking.md,
 * "Title and description"); every value from the call is untrusted text
 * and is only ever placed, never interpreted.
 */
#ifndef CALEVENT_H
#define CALEVENT_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "leadfacts.h"

struct calevent_spec {
	const char *event_id;
	const char *title;
	const char *description;
	int64_t start_s;		/* instant */
	int offset_s;			/* the offset the time was given with, kept in dateTime */
	int duration_minutes;
	const char *time_zone;		/* IANA zone for timeZone */
	const char *attendee_email;
	const char *attendee_name;	/* may be NULL */
	const char *lead_analytics_id;
	int generation;
	const char *meet_request_id;	/* NULL: no Meet link requested */
};

/* "John Smith + TechCorp + Demo", "Lead + Demo"; at most 500 bytes. The caller frees it. */
char *calevent_title(const char *name, const char *company);

/* The description template (docs/booking.md), filled in with lead's facts. The caller frees it. */
char *calevent_description(const struct lead_facts *lead);

/*
 * The Google event id for a lead's booking generation: "lead" + the lead's
 * UUID in hex + "g" + generation, all base32hex as Google requires. A
 * redelivered or retried booking therefore hits the same id (Google answers
 * 409), and a lead booked again after a cancellation gets a fresh one.
 * Returns -1 when lead_id is not a UUID.
 */
int calevent_id_for(const char *lead_id, int generation, char *out, size_t size);

/* The events.insert body. The caller deletes it with cJSON_Delete(). */
cJSON *calevent_build(const struct calevent_spec *spec);

/* The events.patch body that moves an event to a new start (same duration). */
cJSON *calevent_build_move(const struct calevent_spec *spec);

/*
 * The instant an event's start or end (an EventDateTime as Google answers
 * it) stands for, for a sync comparing it with a meeting's row (sync.c).
 * dateTime: its instant, whatever offset it is written in (one without an
 * offset is wall time in the object's timeZone, else in zone). date (an
 * all-day event, "2099-01-31"): 00:00 of that day in zone, the calendar's,
 * so an all-day event runs from its first day's midnight to its end date's
 * (Google's end date is exclusive). 0, or -1 when neither is readable or
 * the zone is unknown.
 */
int calevent_read_when(const cJSON *when, const char *zone, int64_t *out);

/* Lower-case, trim and check an email address roughly (one '@', no spaces or controls). The caller frees it. */
char *calevent_clean_email(const char *raw);

/*
 * Whom a booked lead invites: the contact's email, else the one the analysis
 * extracted, each cleaned; NULL when neither is usable. The caller frees it.
 */
char *calevent_attendee_email(const struct lead_row *lead);

/*
 * A lead as the calendar shows it: *title, *description (its transcript link
 * made from transcript_tmpl, TRANSCRIPT_URL) and *attendee_name (NULL when
 * there is none), name_override first when given. Fresh strings the caller
 * frees: the one path from a lead's row to an event, automatic or by hand.
 */
void calevent_for_lead(const struct lead_row *lead, const char *name_override, const char *transcript_tmpl,
		       char **title, char **description, char **attendee_name);

#endif
