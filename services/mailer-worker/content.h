/*
 * content: what a mail says, from the facts the database holds.
 *
 * Pure: given the meeting(s), the lead and the owner as loaded, it fills the
 * kind's templates (subject, text, HTML) and builds the iCalendar part. The
 * lead context is the event's (docs/booking.md, "Title and description"): status tag,
 * phone, company, the AI's reasoning (a JSON object shown as "key: value"
 * lines), the call summary, recording and transcript links. Times are shown
 * in the meeting's zone with its UTC offset and again in UTC, so nobody has to
 * guess which clock a time is on. Links that are not http(s) URLs are
 * dropped rather than shown.
 *
 * The conflict mail has no meeting: it reports a lead the scheduler did not
 * book because the owner's calendar is busy at the time the lead asked for,
 * with that time and the busy spans shown in the owner's zone. A created or
 * rescheduled meeting booked over busy time says so, as does one whose
 * calendar could not be checked.
 *
 * Two-way sync (docs/sync.md) adds the declined mail (the lead declined the
 * invitation; the meeting stays and the owner decides) and changes made in
 * Google Calendar: a rescheduled or cancelled mail whose row says
 * change_source 'google' tells the owner they did it there. Neither has an
 * iCalendar part. The owner's Google Calendar already holds the change, and
 * a REQUEST or CANCEL under the event's UID would at best repeat it and at
 * worst add a second copy in another client, with a SEQUENCE that is ours,
 * not the one Google gave the event when the rep changed it. A decline
 * changes nothing in the meeting, so there is nothing to send.
 */
#ifndef MAILER_CONTENT_H
#define MAILER_CONTENT_H

#include <stdbool.h>
#include <stdint.h>

#include "leadfacts.h"

enum content_kind {
	CONTENT_CREATED,
	CONTENT_RESCHEDULED,
	CONTENT_CANCELLED,
	CONTENT_REMINDER,
	CONTENT_DISCONNECTED,
	CONTENT_CONFLICT,
	CONTENT_DECLINED,
};

/* calendar_meetings.has_conflict: whether the booking checked the calendar, and what it found. */
enum content_check {
	CONTENT_CHECK_NONE,		/* NULL: not checked (conflict_detail may say why) */
	CONTENT_CHECK_FREE,
	CONTENT_CHECK_BUSY,
};

/* One calendar_meetings row; any string may be NULL. */
struct content_meeting {
	const char *id;
	const char *google_event_id;
	const char *title;
	const char *description;
	const char *attendee_email;
	const char *attendee_name;
	const char *zone;		/* IANA name; unknown or NULL shows UTC */
	const char *meet_link;
	const char *html_link;
	const char *cancellation_reason;
	enum content_check check;
	const char *conflict_detail;	/* the busy spans, or why the calendar could not be checked */
	bool changed_in_google;		/* change_source 'google': a Google change created or ended the row */
	int64_t start_s, end_s;
};

struct content_facts {
	enum content_kind kind;
	int sequence;			/* SEQUENCE of the change this mail reports */
	int64_t now_s;			/* DTSTAMP */

	const char *owner_name;
	const char *owner_email;	/* checked (header_address()) */
	const char *google_email;	/* the Google account; NULL when unknown */

	struct content_meeting meeting;	/* all kinds but disconnected and conflict */
	bool has_previous;		/* rescheduled: the meeting it replaced was found */
	struct content_meeting previous;

	const char *lead_id;
	struct lead_facts lead;		/* what the calendar event shows too; links that are not web URLs are left out */
	const char *lead_email;		/* conflict: whom the owner would book; unchecked text */

	const char *disconnect_reason;	/* grant_revoked, user_disconnected */
	int64_t disconnected_at;	/* 0 when unknown */
	const char *user_zone;		/* to show disconnected_at in */
	const char *reconnect_url;	/* FRONTEND_URL, or NULL */

	/* conflict: calendar_booking_outcomes' requested slot and busy spans, shown in user_zone. */
	int64_t requested_start_s, requested_end_s;
	const char *busy_json;		/* [{"start", "end"}] in RFC 3339; NULL or unreadable: busy_detail */
	const char *busy_detail;	/* the outcome's detail sentence */
};

struct content {
	char *subject;			/* a header value: one line, RFC 2047 when needed */
	char *text;
	char *html;
	char *ics;			/* NULL for disconnected, conflict, declined and changes made in Google */
	const char *ics_method;		/* "REQUEST" or "CANCEL" */
	const char *conflict;		/* X-Meeting-Conflict: "yes" for a meeting booked over busy time, else NULL */
};

/* "created", ... as in the job's kind and the X-Meeting-Action header. */
const char *content_kind_name(enum content_kind kind);
/* 0, or -1 for a name that is not a kind. */
int content_kind_parse(const char *name, enum content_kind *kind);

/*
 * Render the mail. 0, or -1 with *error set (the caller frees it) when a
 * template is broken, which the unit test rules out. The caller releases
 * *out with content_release().
 */
int content_build(const struct content_facts *facts, struct content *out, char **error);

/* Free what content_build() put in c (not c itself). */
void content_release(struct content *c);

#endif
