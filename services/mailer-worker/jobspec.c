/*
 * jobspec: reading a mailer.jobs body (see jobspec.h).
 */
#include "jobspec.h"

#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ids.h"
#include "xmalloc.h"

/* A lower-case copy of the UUID member name of j; NULL when absent. *bad is set when present but not a UUID. */
static char *jobspec_uuid(const cJSON *j, const char *name, bool *bad)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
	char *out;

	if (v == NULL || cJSON_IsNull(v))
		return NULL;
	if (!ids_is_uuid(cJSON_GetStringValue(v))) {
		*bad = true;
		return NULL;
	}
	out = xstrdup(v->valuestring);
	ids_lower(out);
	return out;
}

int jobspec_parse(const char *message_id, const char *body, size_t len, struct jobspec *out, const char **why)
{
	cJSON *j;
	const cJSON *seq, *reason;
	bool bad = false;

	memset(out, 0, sizeof(*out));
	out->sequence = -1;
	if (message_id == NULL || *message_id == '\0' || strlen(message_id) > JOBSPEC_MESSAGE_ID_MAX) {
		*why = "the message has no usable message_id, which the mailer de-duplicates on";
		return -1;
	}
	j = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(j)) {
		*why = "the body is not a JSON object";
		cJSON_Delete(j);
		return -1;
	}
	if (content_kind_parse(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "kind")), &out->kind) < 0) {
		*why = "kind is not one of created, rescheduled, cancelled, reminder, disconnected, conflict, declined";
		cJSON_Delete(j);
		return -1;
	}
	out->has_kind = true;
	out->user_id = jobspec_uuid(j, "user_id", &bad);
	out->meeting_id = jobspec_uuid(j, "meeting_id", &bad);
	out->previous_id = jobspec_uuid(j, "previous_meeting_id", &bad);
	out->lead_id = jobspec_uuid(j, "lead_analytics_id", &bad);
	seq = cJSON_GetObjectItemCaseSensitive(j, "sequence");
	reason = cJSON_GetObjectItemCaseSensitive(j, "reason");
	if (cJSON_IsNumber(seq) && seq->valuedouble >= 0 && seq->valuedouble < 1e9)
		out->sequence = (int)seq->valuedouble;
	else if (seq != NULL)
		bad = true;
	if (cJSON_IsString(reason))
		out->reason = xstrdup(reason->valuestring);
	cJSON_Delete(j);
	if (bad || out->user_id == NULL) {
		*why = "user_id must be a UUID, and so must meeting_id, previous_meeting_id and lead_analytics_id "
		       "when given";
		jobspec_release(out);
		return -1;
	}
	if (out->kind == CONTENT_CONFLICT && out->lead_id == NULL) {
		*why = "a conflict mail needs lead_analytics_id";
		jobspec_release(out);
		return -1;
	}
	if (out->kind != CONTENT_DISCONNECTED && out->kind != CONTENT_CONFLICT && out->meeting_id == NULL) {
		*why = "a meeting mail needs meeting_id";
		jobspec_release(out);
		return -1;
	}
	/* Neither is about a meeting: one named anyway is not read, so the mail shows only what the job is about. */
	if (out->kind == CONTENT_DISCONNECTED || out->kind == CONTENT_CONFLICT) {
		free(out->meeting_id);
		out->meeting_id = NULL;
	}
	return 0;
}

void jobspec_release(struct jobspec *spec)
{
	free(spec->user_id);
	free(spec->meeting_id);
	free(spec->previous_id);
	free(spec->lead_id);
	free(spec->reason);
	spec->user_id = spec->meeting_id = spec->previous_id = spec->lead_id = spec->reason = NULL;
}
