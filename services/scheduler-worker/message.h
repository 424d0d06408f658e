/*
 * message: the scheduler's readers of the bodies it consumes,
 * lead.analyzed, meeting.command and calendar.changed (proto/messages/).
 *
 * Pure: bytes in, the fields or the reason for refusal out, so the fuzzer
 * (tests/fuzz) and the unit tests drive them directly. Whatever they refuse
 * is poison: the worker dead-letters it with the reason at once instead of
 * retrying what can never succeed. Ids come out lower-cased, the form they
 * are stored, compared and logged in.
 *
 * The broker is not a trust boundary: a message may come from anyone who
 * can publish to it, so every field is checked again here exactly as the
 * gateway checks the request it came from (lib/fields, lib/datetime, ids),
 * whatever the gateway already did. A command must be exactly what the
 * gateway sends for its kind: only its own fields, each a string (but
 * allow_conflict, a boolean, and duration_minutes, a number); a lead
 * needs its two ids, and call_id and occurred_at, when present, must be
 * what the contract says.
 */
#ifndef MESSAGE_H
#define MESSAGE_H

#include <stddef.h>

enum message_command_kind {
	MESSAGE_CREATE,
	MESSAGE_RESCHEDULE,
	MESSAGE_CANCEL,
	MESSAGE_AVAILABILITY,	/* a read: the rep's busy and free time, never stored */
};

/* The widest range an availability command may ask about, as the gateway allows. */
#define MESSAGE_AVAILABILITY_MAX_DAYS 31

struct message_lead {
	char *lead_id;
	char *user_id;
};

struct message_command {
	enum message_command_kind kind;
	char *command_id;
	char *user_id;
	char *meeting_id;	/* reschedule, cancel */
	char *lead_id;		/* create */
	char *date_time;	/* create: date_time; reschedule: new_date_time; unchecked text */
	char *reason;		/* cancel; NULL when absent */
	char *email_override;	/* create: attendee_email */
	char *name_override;	/* create: attendee_name */
	int allow_conflict;	/* create, reschedule: allow_conflict is true (book over busy time) */
	long long from_s, to_s;	/* availability: the range, RFC 3339 with offset in the message */
	int duration_minutes;	/* availability: the shortest free span worth naming */
};

/*
 * Read a lead.analyzed body. 0 and the fields (release them with
 * message_lead_release()), or -1 and *why, a static sentence; on -1 nothing
 * needs releasing.
 */
int message_parse_lead(const char *body, size_t len, struct message_lead *out, const char **why);
void message_lead_release(struct message_lead *m);

/*
 * Read a calendar.commands body. 0 or -1 and *why as above; on -1 the
 * fields read so far stay in *out (command_id lets the refusal be answered)
 * and must be released too. message_command_release() frees the strings,
 * not out itself.
 */
int message_parse_command(const char *body, size_t len, struct message_command *out, const char **why);
void message_command_release(struct message_command *m);

/*
 * A calendar.changed (or calendar.connected) body: only asks for a sync of
 * user_id, so only that and "full" are read; the push's channel_id and
 * message_number are the gateway's, checked by their types when present.
 */
struct message_sync {
	char *user_id;
	int full;		/* "full": true: forget the sync token and reconcile everything */
};

/*
 * Read a calendar.changed body. 0 and the fields (release them with
 * message_sync_release()), or -1 and *why, a static sentence; on -1 nothing
 * needs releasing.
 */
int message_parse_sync(const char *body, size_t len, struct message_sync *out, const char **why);
void message_sync_release(struct message_sync *m);

#endif
