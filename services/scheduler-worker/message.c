/*
 * message: readers of lead.analyzed, calendar.commands and calendar.changed bodies (see message.h).
 */
#include "message.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "datetime.h"
#include "fields.h"
#include "ids.h"
#include "xmalloc.h"

/*
 * A member that must be a string when present: 0 and *out (a copy, NULL
 * when absent), or -1 when it is there but is no string.
 */
static int message_string(const cJSON *j, const char *key, char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!cJSON_IsString(v) || v->valuestring == NULL)
		return -1;
	*out = xstrdup(v->valuestring);
	return 0;
}

/* A date-time the scheduler reads (lib/datetime); with_offset: it must name its offset too (RFC 3339). */
static bool message_datetime_ok(const char *s, bool with_offset)
{
	struct datetime dt;

	return datetime_parse(s, strlen(s), &dt) == 0 && (!with_offset || dt.has_offset);
}

int message_parse_lead(const char *body, size_t len, struct message_lead *out, const char **why)
{
	cJSON *j = cJSON_ParseWithLength(body, len);
	char *lead = NULL, *user = NULL, *call = NULL, *occurred = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(j)) {
		*why = "the body is not a JSON object";
		goto out;
	}
	if (message_string(j, "lead_analytics_id", &lead) < 0 || message_string(j, "user_id", &user) < 0 ||
	    !ids_is_uuid(lead) || !ids_is_uuid(user)) {
		*why = "lead_analytics_id and user_id must be UUIDs";
		goto out;
	}
	if (message_string(j, "call_id", &call) < 0 || (call != NULL && !ids_is_uuid(call))) {
		*why = "call_id must be a UUID when present";
		goto out;
	}
	if (message_string(j, "occurred_at", &occurred) < 0 ||
	    (occurred != NULL && !message_datetime_ok(occurred, true))) {
		*why = "occurred_at must be an RFC 3339 date-time when present";
		goto out;
	}
	out->lead_id = lead;
	out->user_id = user;
	lead = user = NULL;
	ids_lower(out->lead_id);
	ids_lower(out->user_id);
	rc = 0;
out:
	free(lead);
	free(user);
	free(call);
	free(occurred);
	cJSON_Delete(j);
	return rc;
}

void message_lead_release(struct message_lead *m)
{
	free(m->lead_id);
	free(m->user_id);
	memset(m, 0, sizeof(*m));
}

/* The members each command may carry (proto/messages/meeting.command.schema.json); "command" is checked first. */
static const char *const message_common[] = { "command", "command_id", "user_id" };
static const char *const message_create[] = { "lead_analytics_id", "attendee_email", "attendee_name", "date_time",
					      "allow_conflict" };
static const char *const message_reschedule[] = { "meeting_id", "new_date_time", "allow_conflict" };
static const char *const message_cancel[] = { "meeting_id", "reason" };
static const char *const message_availability[] = { "from", "to", "duration_minutes" };

#define MESSAGE_COUNT(a) (sizeof(a) / sizeof(*(a)))
#define MESSAGE_STR_(x) #x
#define MESSAGE_STR(x) MESSAGE_STR_(x)

static bool message_in(const char *key, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(key, list[i]) == 0)
			return true;
	return false;
}

/* Every member is one the kind allows, a string, and there once (two readers could pick different copies). */
static const char *message_check_members(const cJSON *j, enum message_command_kind kind)
{
	static const char *const *const own[] = { message_create, message_reschedule, message_cancel,
						  message_availability };
	static const size_t nown[] = { MESSAGE_COUNT(message_create), MESSAGE_COUNT(message_reschedule),
				       MESSAGE_COUNT(message_cancel), MESSAGE_COUNT(message_availability) };
	static const char *const unknown[] = {
		("create takes only command, command_id, user_id, lead_analytics_id, attendee_email, attendee_name, "
		 "date_time and allow_conflict"),
		"reschedule takes only command, command_id, user_id, meeting_id, new_date_time and allow_conflict",
		"cancel takes only command, command_id, user_id, meeting_id and reason",
		"availability takes only command, command_id, user_id, from, to and duration_minutes",
	};
	size_t n = 0;
	const cJSON *m;

	cJSON_ArrayForEach(m, j) {
		if (m->string == NULL ||
		    (!message_in(m->string, message_common, MESSAGE_COUNT(message_common)) &&
		     !message_in(m->string, own[kind], nown[kind])))
			return unknown[kind];
		if (strcmp(m->string, "allow_conflict") == 0) {
			if (!cJSON_IsBool(m))
				return "allow_conflict must be true or false";
		} else if (strcmp(m->string, "duration_minutes") == 0) {
			if (!cJSON_IsNumber(m))
				return "duration_minutes must be a number";
		} else if (!cJSON_IsString(m) || m->valuestring == NULL) {
			return "every member of a command must be a string";
		}
		/* More members than the kind has names means one is there twice; this also bounds the search below. */
		if (++n > MESSAGE_COUNT(message_common) + nown[kind])
			return "a member appears twice";
		for (const cJSON *p = j->child; p != m; p = p->next)
			if (strcmp(p->string, m->string) == 0)
				return "a member appears twice";
	}
	return NULL;
}

/* An availability command's range and span length, as the gateway checked them; NULL, or why not. */
static const char *message_availability_range(const cJSON *j, struct message_command *out)
{
	const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "from"));
	const char *to = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "to"));
	const cJSON *minutes = cJSON_GetObjectItemCaseSensitive(j, "duration_minutes");
	struct datetime a, b;

	if (from == NULL || to == NULL || datetime_parse(from, strlen(from), &a) < 0 ||
	    datetime_parse(to, strlen(to), &b) < 0 || !a.has_offset || !b.has_offset)
		return "from and to must be RFC 3339 date-times with an offset";
	if (b.epoch_s <= a.epoch_s || b.epoch_s - a.epoch_s > MESSAGE_AVAILABILITY_MAX_DAYS * 86400LL)
		return "to must be after from, at most " MESSAGE_STR(MESSAGE_AVAILABILITY_MAX_DAYS) " days later";
	if (!cJSON_IsNumber(minutes) || minutes->valuedouble < 5 || minutes->valuedouble > 1440 ||
	    minutes->valuedouble != (double)(int)minutes->valuedouble)
		return "duration_minutes must be a whole number from 5 to 1440";
	out->from_s = a.epoch_s;
	out->to_s = b.epoch_s;
	out->duration_minutes = (int)minutes->valuedouble;
	return NULL;
}

static char *message_field(const cJSON *j, const char *key)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, key));

	return v ? xstrdup(v) : NULL;
}

int message_parse_command(const char *body, size_t len, struct message_command *out, const char **why)
{
	cJSON *j = cJSON_ParseWithLength(body, len);
	const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "command"));
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(j)) {
		*why = "the body is not a JSON object";
		goto out;
	}
	if (cmd != NULL && strcmp(cmd, "create") == 0) {
		out->kind = MESSAGE_CREATE;
	} else if (cmd != NULL && strcmp(cmd, "reschedule") == 0) {
		out->kind = MESSAGE_RESCHEDULE;
	} else if (cmd != NULL && strcmp(cmd, "cancel") == 0) {
		out->kind = MESSAGE_CANCEL;
	} else if (cmd != NULL && strcmp(cmd, "availability") == 0) {
		out->kind = MESSAGE_AVAILABILITY;
	} else {
		*why = "command must be create, reschedule, cancel or availability";
		goto out;
	}
	out->command_id = message_field(j, "command_id");
	out->user_id = message_field(j, "user_id");
	out->meeting_id = message_field(j, "meeting_id");
	out->lead_id = message_field(j, "lead_analytics_id");
	out->date_time = message_field(j, out->kind == MESSAGE_RESCHEDULE ? "new_date_time" : "date_time");
	out->reason = message_field(j, "reason");
	out->email_override = message_field(j, "attendee_email");
	out->name_override = message_field(j, "attendee_name");
	ids_lower(out->command_id);
	ids_lower(out->user_id);
	ids_lower(out->meeting_id);
	ids_lower(out->lead_id);
	/* The ids first: command_id lets even a refusal be answered. */
	if (!ids_is_uuid(out->command_id) || !ids_is_uuid(out->user_id)) {
		*why = "command_id and user_id must be UUIDs";
		goto out;
	}
	if ((*why = message_check_members(j, out->kind)) != NULL)
		goto out;
	out->allow_conflict = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "allow_conflict"));
	if (out->kind == MESSAGE_AVAILABILITY) {
		*why = message_availability_range(j, out);
		rc = *why == NULL ? 0 : -1;
		goto out;
	}
	if (out->kind == MESSAGE_CREATE && !ids_is_uuid(out->lead_id)) {
		*why = "lead_analytics_id must be a UUID";
		goto out;
	}
	if (out->kind != MESSAGE_CREATE && !ids_is_uuid(out->meeting_id)) {
		*why = "meeting_id must be a UUID";
		goto out;
	}
	if (out->email_override != NULL && !fields_email_ok(out->email_override)) {
		*why = "attendee_email is not a valid email address";
		goto out;
	}
	if (out->name_override != NULL && !fields_name_ok(out->name_override)) {
		*why = "attendee_name must be at most " MESSAGE_STR(FIELDS_NAME_MAX) " bytes, without control characters";
		goto out;
	}
	if (out->kind == MESSAGE_RESCHEDULE && out->date_time == NULL) {
		*why = "new_date_time is required";
		goto out;
	}
	if (out->date_time != NULL && !message_datetime_ok(out->date_time, false)) {
		*why = out->kind == MESSAGE_RESCHEDULE ? "new_date_time must be an ISO 8601 date and time"
						       : "date_time must be an ISO 8601 date and time";
		goto out;
	}
	if (out->reason != NULL && !fields_reason_ok(out->reason)) {
		*why = "reason must be at most " MESSAGE_STR(FIELDS_REASON_MAX) " bytes";
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(j);
	return rc;
}

void message_command_release(struct message_command *m)
{
	char **strings[] = {
		&m->command_id, &m->user_id, &m->meeting_id, &m->lead_id,
		&m->date_time, &m->reason, &m->email_override, &m->name_override,
	};

	for (size_t i = 0; i < sizeof(strings) / sizeof(*strings); i++) {
		free(*strings[i]);
		*strings[i] = NULL;
	}
}

int message_parse_sync(const char *body, size_t len, struct message_sync *out, const char **why)
{
	cJSON *j = cJSON_ParseWithLength(body, len);
	const cJSON *full, *number;
	char *user = NULL, *channel = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(j)) {
		*why = "the body is not a JSON object";
		goto out;
	}
	if (message_string(j, "user_id", &user) < 0 || !ids_is_uuid(user)) {
		*why = "user_id must be a UUID";
		goto out;
	}
	if (message_string(j, "channel_id", &channel) < 0 || (channel != NULL && !ids_is_uuid(channel))) {
		*why = "channel_id must be a UUID when present";
		goto out;
	}
	number = cJSON_GetObjectItemCaseSensitive(j, "message_number");
	if (number != NULL && (!cJSON_IsNumber(number) || number->valuedouble < 1)) {
		*why = "message_number must be a positive number when present";
		goto out;
	}
	full = cJSON_GetObjectItemCaseSensitive(j, "full");
	if (full != NULL && !cJSON_IsBool(full)) {
		*why = "full must be true or false when present";
		goto out;
	}
	out->user_id = user;
	out->full = cJSON_IsTrue(full);
	user = NULL;
	ids_lower(out->user_id);
	rc = 0;
out:
	free(user);
	free(channel);
	cJSON_Delete(j);
	return rc;
}

void message_sync_release(struct message_sync *m)
{
	free(m->user_id);
	memset(m, 0, sizeof(*m));
}
