/*
 * message: readers of lead.analyzed and calendar.commands bodies (see message.h).
 */
#include "message.h"

#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ids.h"
#include "xmalloc.h"

int message_parse_lead(const char *body, size_t len, struct message_lead *out, const char **why)
{
	cJSON *j = cJSON_ParseWithLength(body, len);
	const char *lead, *user;

	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(j)) {
		*why = "the body is not a JSON object";
		cJSON_Delete(j);
		return -1;
	}
	lead = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "lead_analytics_id"));
	user = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "user_id"));
	if (!ids_is_uuid(lead) || !ids_is_uuid(user)) {
		*why = "lead_analytics_id and user_id must be UUIDs";
		cJSON_Delete(j);
		return -1;
	}
	out->lead_id = xstrdup(lead);
	out->user_id = xstrdup(user);
	ids_lower(out->lead_id);
	ids_lower(out->user_id);
	cJSON_Delete(j);
	return 0;
}

void message_lead_release(struct message_lead *m)
{
	free(m->lead_id);
	free(m->user_id);
	memset(m, 0, sizeof(*m));
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
	} else {
		*why = "command must be create, reschedule or cancel";
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
	if (!ids_is_uuid(out->command_id) || !ids_is_uuid(out->user_id)) {
		*why = "command_id and user_id must be UUIDs";
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
	if (out->reason != NULL && strlen(out->reason) > MESSAGE_REASON_MAX) {
		size_t cut = MESSAGE_REASON_MAX;

		/* Never inside a UTF-8 sequence: PostgreSQL refuses the broken text. */
		while (cut > 0 && ((unsigned char)out->reason[cut] & 0xc0) == 0x80)
			cut--;
		out->reason[cut] = '\0';
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
