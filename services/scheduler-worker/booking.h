/*
 * booking: put one meeting into a user's Google Calendar and commit its row.
 *
 * Before the event is made, the rep's calendar is asked whether the slot is
 * free (conflict.h); over busy time the booking stops with BOOKING_BUSY
 * unless it may go over it, and the row records what the check found. The
 * lead's own event (a redelivery after Google made it) is never a conflict.
 *
 * The event id is derived from the lead and its booking generation, so every
 * attempt at the same booking names the same event. Google answers 409 when
 * a previous attempt already created it (a redelivery, or a worker killed
 * between the call and the commit): the event is then read back (and
 * restored if it was deleted) and adopted. The row is written in one
 * statement that also records the lead's outcome, and a unique index allows
 * one active meeting per lead, so every path converges to exactly one event
 * and one row.
 */
#ifndef BOOKING_H
#define BOOKING_H

#include <stdbool.h>
#include <stdint.h>

struct busy_list;
struct scheduler;
struct tokens_stored;

/* Inputs; the caller keeps them valid until the callback. */
struct booking {
	const char *user_id;
	const char *lead_id;
	const char *call_id;		/* may be NULL */
	const char *contact_id;		/* may be NULL */
	const char *calendar_id;
	const char *time_zone;
	const char *title;
	const char *description;
	const char *attendee_email;
	const char *attendee_name;	/* may be NULL */
	int64_t start_s;
	int offset_s;
	int duration_minutes;
	int generation;
	const char *metadata_json;	/* meeting_metadata */
	const char *command_id;		/* a manual create stores its reply with the row; NULL otherwise */
	const char *trace;		/* for logs */
	bool allow_conflict;		/* book over the rep's busy time (marked has_conflict) rather than refuse */
};

enum booking_status {
	BOOKING_DONE,		/* committed: meeting_id is set (meeting_json for a manual create) */
	BOOKING_NOT_CONNECTED,
	BOOKING_REVOKED,	/* the grant was revoked just now; the user is disconnected */
	BOOKING_TRANSIENT,	/* Google or the database is unavailable: retry later */
	BOOKING_REJECTED,	/* Google refused the event for good: reason and detail say why */
	BOOKING_CONFLICT,	/* the lead already has another active meeting */
	BOOKING_BUSY,		/* the rep is busy then and the booking may not go over it: busy says when */
};

struct booking_result {
	enum booking_status status;
	const char *meeting_json;	/* a manual create's meeting resource (calendar_meeting_json) */
	const char *meeting_id;
	int sequence;
	bool created;			/* false: another delivery committed this same event first */
	const char *reason;		/* short code: Google's reason, or what failed */
	const char *detail;		/* one sentence */
	const struct busy_list *busy;	/* BOOKING_BUSY: the rep's busy time in the slot */
};

/* *result lives only for the duration of the callback. */
typedef void (*booking_cb)(const struct booking_result *result, void *arg);

/*
 * Run a booking; cb is called exactly once. stored: the user's token columns
 * as the caller just read them (tokens.h), used during this call only, or
 * NULL to have them read. cb is called at once for a lead id that is not a
 * UUID, and with stored also for a user found not connected.
 */
void booking_run(struct scheduler *s, const struct booking *b, const struct tokens_stored *stored, booking_cb cb,
		 void *arg);

/*
 * Run one Google call for user_id within the per-user rate limit: fn(arg)
 * now, or after the wait the limit asks for. Shared with the commands (cmd-*.c).
 */
void booking_rate_limited(struct scheduler *s, const char *user_id, void (*fn)(void *arg), void *arg);

#endif
