/*
 * jobspec: the reader of a mailer.jobs body (proto/messages/mail.job.schema.json).
 *
 * Pure, like the rest of mailer_core: the message id and body in, what to
 * mail or the reason for refusal out, so tests/fuzz drives it directly. A
 * refused job is poison: the worker dead-letters it with the reason at once.
 */
#ifndef JOBSPEC_H
#define JOBSPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "content.h"

/* Longer message ids are refused: the id is the de-duplication key stored per mail. */
#define JOBSPEC_MESSAGE_ID_MAX 255

struct jobspec {
	bool has_kind;		/* kind was read, also when the job is refused after: a metrics label */
	enum content_kind kind;
	char *user_id;		/* lower-case UUID */
	char *meeting_id;	/* NULL for disconnected and conflict */
	char *previous_id;	/* rescheduled: the meeting it replaced; may be NULL */
	char *lead_id;		/* conflict: the lead not booked; else may be NULL */
	int sequence;		/* -1: not in the job, use the meeting's; declined: the answer's count, not a SEQUENCE */
	char *reason;		/* cancelled, disconnected; may be NULL */
};

/*
 * 0 and the fields (release them with jobspec_release()), or -1 and *why,
 * a static sentence, with nothing to release but has_kind and kind still
 * telling what kind of mail was refused.
 */
int jobspec_parse(const char *message_id, const char *body, size_t len, struct jobspec *out, const char **why);
/* Frees the strings, not spec itself. */
void jobspec_release(struct jobspec *spec);

#endif
