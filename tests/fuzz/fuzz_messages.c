/*
 * fuzz_messages: every body the workers consume from the broker, which
 * anyone with publish rights (the webhook, an operator, a bug) can fill.
 *
 * Input: a selector byte (lead, command, mail job, calendar.changed), then the body (for mail jobs: the message id,
 * NUL, the body). Invariants: an accepted message has lower-case UUIDs
 * where the code relies on them, a command has the fields its kind needs,
 * a reason fits the limit, and no meeting mail is accepted without its
 * meeting.
 */
#include "fuzz.h"

#include "fields.h"
#include "ids.h"
#include "jobspec.h"
#include "message.h"

static void fuzz_lower_uuid(const char *what, const char *s)
{
	if (!ids_is_uuid(s))
		fuzz_fail("%s '%s' is not a UUID", what, s ? s : "(null)");
	for (; *s; s++) {
		if (*s >= 'A' && *s <= 'Z')
			fuzz_fail("%s is not lower-case", what);
	}
}

static void fuzz_lead(const uint8_t *data, size_t size)
{
	struct message_lead m;
	const char *why;

	if (message_parse_lead((const char *)data, size, &m, &why) == 0) {
		fuzz_lower_uuid("lead_id", m.lead_id);
		fuzz_lower_uuid("user_id", m.user_id);
		message_lead_release(&m);
	}
}

static void fuzz_command(const uint8_t *data, size_t size)
{
	struct message_command m;
	const char *why;

	if (message_parse_command((const char *)data, size, &m, &why) == 0) {
		fuzz_lower_uuid("command_id", m.command_id);
		fuzz_lower_uuid("user_id", m.user_id);
		fuzz_lower_uuid(m.kind == MESSAGE_CREATE ? "lead_id" : "meeting_id",
				m.kind == MESSAGE_CREATE ? m.lead_id : m.meeting_id);
		if (m.reason != NULL && !fields_reason_ok(m.reason))
			fuzz_fail("a reason over the limit");
		if (m.name_override != NULL && !fields_name_ok(m.name_override))
			fuzz_fail("an attendee name the gateway would refuse");
		if (m.email_override != NULL && !fields_email_ok(m.email_override))
			fuzz_fail("an attendee email the gateway would refuse");
	}
	message_command_release(&m);
}

static void fuzz_sync(const uint8_t *data, size_t size)
{
	struct message_sync m;
	const char *why;

	if (message_parse_sync((const char *)data, size, &m, &why) == 0) {
		fuzz_lower_uuid("user_id", m.user_id);
		if (m.full != 0 && m.full != 1)
			fuzz_fail("full is neither true nor false");
		message_sync_release(&m);
	}
}

static void fuzz_mail_job(const uint8_t *data, size_t size)
{
	struct fuzz_fields f;
	struct jobspec spec;
	const char *id;
	const char *why;

	fuzz_fields_split(data, size, &f, 1);
	id = f.v[0];
	if (jobspec_parse(id, (const char *)data + strlen(id) + (strlen(id) < size), size - strlen(id) -
			  (strlen(id) < size), &spec, &why) == 0) {
		fuzz_lower_uuid("user_id", spec.user_id);
		if (spec.kind == CONTENT_CONFLICT)
			fuzz_lower_uuid("lead_analytics_id", spec.lead_id);
		if (spec.kind != CONTENT_DISCONNECTED && spec.kind != CONTENT_CONFLICT)
			fuzz_lower_uuid("meeting_id", spec.meeting_id);
		else if (spec.meeting_id != NULL)
			fuzz_fail("a mail without a meeting kept one");
		jobspec_release(&spec);
	}
	fuzz_fields_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		fuzz_lead(data + 1, size - 1);
		break;
	case 1:
		fuzz_command(data + 1, size - 1);
		break;
	case 2:
		fuzz_mail_job(data + 1, size - 1);
		break;
	default:
		fuzz_sync(data + 1, size - 1);
		break;
	}
	return 0;
}
