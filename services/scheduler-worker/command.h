/*
 * command: what the meeting commands share, private to command.c and the
 * cmd-<name>.c files (one per command, each with its command_entry).
 *
 * command.c takes a delivery, checks who published it and reads it, looks up
 * a stored reply, and holds the steps more than one command takes: replying,
 * refusing, the retry tiers and the dead letter, access tokens, a change to a
 * booked meeting (reschedule, cancel) and the mail of a committed change.
 * Where the commands differ, it calls the command's entry.
 */
#ifndef COMMAND_H
#define COMMAND_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "booking.h"
#include "datetime.h"
#include "message.h"
#include "tokens.h"

struct command_job;
struct conflict_result;
struct conflict_slot;
struct db_result;
struct google_result;
struct mq_delivery;
struct scheduler;

/* One command's steps; a step a command never reaches is NULL. */
struct command_entry {
	const char *name;		/* for logs */
	const char *mail_kind;		/* the mail a committed change sends; NULL for a read */
	bool stored;			/* a change: applied at most once, its reply stored under the command id */
	/* Read and checked, and (stored) not applied before. */
	void (*start)(struct command_job *job);
	/* reschedule, cancel: the meeting is loaded (command_load_meeting()); now is the database's time. */
	void (*loaded)(struct command_job *job, long long now);
	/* job->access_token holds a valid token (command_get_token()). */
	void (*with_token)(struct command_job *job);
	/* reschedule, availability: what the rep's calendar holds in the slot (command_check(); a first 401 is
	 * answered with a refresh and the check again, not here). */
	void (*checked)(struct command_job *job, const struct conflict_result *r);
	/* reschedule, cancel: Google holds the change (its answer, or NULL); store it with the reply. */
	void (*commit)(struct command_job *job, const cJSON *google);
	/* The commit's row, whose columns are enum command_commit_column; count and log the change. */
	void (*committed)(struct command_job *job, const struct db_result *r);
};

extern const struct command_entry cmd_create_entry;
extern const struct command_entry cmd_reschedule_entry;
extern const struct command_entry cmd_cancel_entry;
extern const struct command_entry cmd_availability_entry;

/* The row a reschedule's or a cancel's commit returns (a cancel stops at CC_SEQUENCE). */
enum command_commit_column { CC_MEETING_JSON, CC_MEETING, CC_SEQUENCE, CC_PREVIOUS_JSON, CC_PREVIOUS };

struct command_job {
	struct scheduler *s;
	struct mq_delivery *d;
	const struct command_entry *entry;
	struct message_command cmd;	/* the command as read; released with the job */
	/* The user's calendar (all but create, which books through booking.c). */
	char *calendar_id, *zone, *access_token;
	bool refreshed;			/* a 401 was answered with one forced refresh already */
	/* The meeting changed (reschedule, cancel). */
	char *event_id;
	int duration_minutes;
	struct datetime when;		/* create, reschedule: the new start */
	int64_t own_start_s, own_end_s;	/* reschedule: the meeting's current slot */
	/* The conflict check (reschedule). */
	bool checked;
	const char *has_conflict;	/* "t", "f", or NULL when not known */
	char *conflict_detail;
	cJSON *busy;			/* reschedule: the busy spans that refuse it, while the event is read back */
	/* Create: the booking and the strings it points to. */
	struct booking booking;
	char *call_id, *contact_id, *title, *description, *email, *attendee_name, *metadata;
	/* The result of a change. */
	cJSON *reply;
	char *result_meeting_id, *previous_meeting_id;
	int sequence;
};

/* Free the job and settle its delivery (scheduler_job_done()). */
void command_job_free(struct command_job *job);

/* Shutting down: the job is freed unsettled and true is returned (the broker redelivers the command). */
bool command_released(struct command_job *job);

/*
 * Replies. Every reply the scheduler sends is built with these (cJSON), in
 * one shape: "ok" and "command_id", then either "error" {"code", "message"}
 * (and "busy" when the rep's busy time refused it) or the result: "meeting"
 * (and "previous" for a reschedule), or "availability". A change's reply is
 * also stored with the change; that copy is built in SQL (command.c says why)
 * with the same members.
 */

/* A reply with ok and command_id; the caller adds its result and deletes it with cJSON_Delete(). */
cJSON *command_reply_new(const struct command_job *job, bool ok);

/* Add name holding json_text (a meeting as calendar_meeting_json() writes it; NULL: null) to reply. */
void command_reply_add_json(cJSON *reply, const char *name, const char *json_text);

/* Publish reply (still the caller's) to whoever is waiting; a reply nobody waits for is dropped by the broker. */
void command_send_reply(struct command_job *job, const cJSON *reply);

/* Answer an error that changed nothing, then ack and free the job. */
void command_fail(struct command_job *job, const char *code, const char *message);

/* command_fail() with the busy spans that caused it (taken over; may be NULL). */
void command_fail_busy(struct command_job *job, const char *code, const char *message, cJSON *busy);

/* A transient failure: through the next retry tier, or answered and dead-lettered past the last. */
void command_retry_or_give_up(struct command_job *job, const char *why);

/* The change is committed (job->reply, result_meeting_id and sequence set): answer, mail, ack. */
void command_succeeded(struct command_job *job);

/* Parse a date-time the user chose into job->when, in zone; NULL or an error message (static). */
const char *command_parse_time(struct command_job *job, const char *text, const char *zone, long long now);

/* Get an access token, then the entry's with_token(); refresh forces a new one. */
void command_get_token(struct command_job *job, bool refresh);

/* The tokens_cb behind command_get_token(), for tokens_get_stored(). */
void command_on_token(enum tokens_status status, const char *token, void *arg);

/* Check slot against the rep's calendar (access token and calendar filled in here), then the entry's checked(). */
void command_check(struct command_job *job, struct conflict_slot *slot);

/* reschedule, cancel: load the meeting into the job, then the entry's loaded(). */
void command_load_meeting(struct command_job *job);

/* reschedule, cancel: Google's answer to the change; on success the entry's commit(). */
void command_on_google(const struct google_result *r, void *arg);

/* reschedule, cancel: the commit's answer; on success the entry's committed(), then command_succeeded(). */
void command_on_committed(const struct db_result *r, void *arg);

#endif
