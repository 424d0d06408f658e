/*
 * conflict: is the rep busy at a meeting's time?
 *
 * Before an event goes into the rep's calendar (an automatic booking, a
 * manual create, a reschedule), Google's freeBusy is asked about its slot
 * (docs/booking.md, "Conflicts"). A calendar Google cannot report on (an
 * error for it inside the 200, or a grant made before the calendar.freebusy
 * scope was asked for) is never taken for free: the answer says it was not
 * checked, and why, and the caller books and says so. Transient failures
 * and an expired token come back to the caller, which retries as for any
 * Google call. The call runs within the user's Google rate limit.
 */
#ifndef CONFLICT_H
#define CONFLICT_H

#include <stdint.h>

#include "busy.h"

struct scheduler;

enum conflict_status {
	CONFLICT_FREE,
	CONFLICT_BUSY,		/* busy: the spans that overlap the slot */
	CONFLICT_UNCHECKED,	/* Google could not say; detail says why */
	CONFLICT_TRANSIENT,	/* Google is unavailable for now */
	CONFLICT_UNAUTHORIZED,	/* 401: refresh the token and ask again */
};

struct conflict_result {
	enum conflict_status status;
	const struct busy_list *busy;	/* every busy span of the slot (BUSY) */
	const char *reason;		/* short code (UNCHECKED, TRANSIENT) */
	const char *detail;		/* one sentence (UNCHECKED, TRANSIENT) */
};

/* *result lives only for the duration of the callback. */
typedef void (*conflict_cb)(const struct conflict_result *result, void *arg);

struct conflict_slot {
	const char *user_id;
	const char *access_token;
	const char *calendar_id;
	int64_t start_s, end_s;		/* the meeting's slot */
	int64_t own_start_s, own_end_s;	/* the meeting's current slot, when it moves; else both 0 */
	const char *purpose;		/* "booking" or "availability": the metric's label */
};

/* Check slot (its strings are copied); cb is called exactly once, later. */
void conflict_check(struct scheduler *s, const struct conflict_slot *slot, conflict_cb cb, void *arg);

/* The outcome's name for logs and metrics ("free", "busy", ...). */
const char *conflict_status_name(enum conflict_status status);

#endif
