/*
 * sync: what the sync's two parts share, private to sync.c (the runs:
 * claims, pages, sync tokens, the sweep) and syncapply.c (one event of
 * Google's against the user's meetings: the SQL and the mails).
 *
 * A run hands syncapply one event at a time, in Google's order, and goes on
 * only when it answers; each change is one statement that applies at most
 * once, and its mail is published and confirmed before the next event, so
 * a run stopped anywhere leaves nothing half done: the next run lists the
 * same changes again (the sync token is stored only at the end) and finds
 * them applied.
 */
#ifndef SYNC_H
#define SYNC_H

#include <cJSON.h>

struct scheduler;

/* Whose calendar, as the run claimed it; the strings stay the run's and must outlive the call. */
struct syncapply_target {
	const char *user_id;
	const char *calendar_id;
	const char *zone;		/* the calendar's zone, for all-day events (DEFAULT_TIMEZONE while unknown) */
	const char *run_start;		/* the database's now() when the run claimed the user */
};

enum syncapply_status {
	SYNCAPPLY_DONE,		/* applied, or nothing to apply: go on */
	SYNCAPPLY_WAIT,		/* a command holds the meeting, or it changed after the run began: rerun later */
	SYNCAPPLY_FAILED,	/* the database, or the broker for the mail, failed: back off and rerun */
};

typedef void (*syncapply_cb)(enum syncapply_status status, void *arg);

/*
 * Apply one event of an events.list page (it must stay valid until cb) to
 * the user's scheduled meeting that has its id, if any: an echo, a move, a
 * cancellation, or the lead's answer. cb runs exactly once, later.
 */
void syncapply_event(struct scheduler *s, const struct syncapply_target *t, const cJSON *event, syncapply_cb cb,
		     void *arg);

/* A full sync did not list event_id at all: its meeting, if still scheduled, was deleted in Google. */
void syncapply_missing(struct scheduler *s, const struct syncapply_target *t, const char *event_id, syncapply_cb cb,
		       void *arg);

/*
 * Publish again the mails of the user's changes that were committed but
 * not yet confirmed by the broker (a crash in between); the mailer drops
 * the copies of those that did go out.
 */
void syncapply_republish(struct scheduler *s, const struct syncapply_target *t, syncapply_cb cb, void *arg);

#endif
