/*
 * fields: the rules for the values a user puts into a meeting command
 * (attendee email and name, cancel reason), in one place for both sides
 * of calendar.commands: the gateway refuses a request that breaks them
 * (400), and the scheduler refuses a message that breaks them (it
 * dead-letters it), so a message that did not come through the gateway's
 * checks can carry nothing the gateway would have refused.
 */
#ifndef FIELDS_H
#define FIELDS_H

#include <stdbool.h>

#define FIELDS_EMAIL_MAX 254	/* bytes (RFC 5321's path limit) */
#define FIELDS_NAME_MAX 255	/* bytes */
#define FIELDS_REASON_MAX 2000	/* bytes */

/* No C0 control character (CR, LF, TAB, NUL ...) and no DEL. */
bool fields_printable(const char *s);
/*
 * Plausible, not proven: one @ with something before it and a dot after,
 * at most FIELDS_EMAIL_MAX bytes, no space, control character or
 * <>,;" (which would split a header or an address list). The scheduler
 * normalises it and Google has the last word.
 */
bool fields_email_ok(const char *s);
/* An attendee name: at most FIELDS_NAME_MAX bytes, printable (it goes into an event, a row and mail headers). */
bool fields_name_ok(const char *s);
/* A cancel reason: at most FIELDS_REASON_MAX bytes (free text: line breaks are fine). */
bool fields_reason_ok(const char *s);

#endif
