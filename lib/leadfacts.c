/*
 * leadfacts: a lead's facts as the rep reads them (see leadfacts.h).
 */
#include "leadfacts.h"

#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "db.h"
#include "xmalloc.h"

enum {
	LF_NAME, LF_CONTACT_NAME, LF_COMPANY, LF_PHONE, LF_STATUS_TAG, LF_REASONING, LF_SUMMARY, LF_RECORDING,
	LF_CALL, LF_CONTACT_ID, LF_CONTACT_EMAIL, LF_EXTRACTED_EMAIL,
};

void leadfacts_from_row(const struct db_result *r, int row, int col, struct lead_row *out)
{
	const char *name = db_value(r, row, col + LF_NAME);

	memset(out, 0, sizeof(*out));
	out->facts.name = name != NULL ? name : db_value(r, row, col + LF_CONTACT_NAME);
	out->facts.company = db_value(r, row, col + LF_COMPANY);
	out->facts.phone = db_value(r, row, col + LF_PHONE);
	out->facts.status_tag = db_value(r, row, col + LF_STATUS_TAG);
	out->facts.reasoning_json = db_value(r, row, col + LF_REASONING);
	out->facts.summary = db_value(r, row, col + LF_SUMMARY);
	out->facts.recording_url = db_value(r, row, col + LF_RECORDING);
	out->call_id = db_value(r, row, col + LF_CALL);
	out->contact_id = db_value(r, row, col + LF_CONTACT_ID);
	out->contact_email = db_value(r, row, col + LF_CONTACT_EMAIL);
	out->extracted_email = db_value(r, row, col + LF_EXTRACTED_EMAIL);
}

char *leadfacts_reasoning(const char *json_text)
{
	cJSON *j, *item;
	char *out;

	if (json_text == NULL)
		return NULL;
	j = cJSON_Parse(json_text);
	if (j == NULL)
		return *json_text != '\0' ? xstrdup(json_text) : NULL;
	if (cJSON_IsString(j)) {
		out = *j->valuestring != '\0' ? xstrdup(j->valuestring) : NULL;
	} else if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
		out = NULL;
		cJSON_ArrayForEach(item, j) {
			char *printed = cJSON_IsString(item) ? NULL : cJSON_PrintUnformatted(item);
			const char *val = printed != NULL ? printed : item->valuestring;
			const char *sep = out != NULL ? "\n" : "";
			char *next = item->string != NULL
					     ? xasprintf("%s%s- %s: %s", out ? out : "", sep, item->string, val)
					     : xasprintf("%s%s- %s", out ? out : "", sep, val);

			cJSON_free(printed);
			free(out);
			out = next;
		}
	} else if (cJSON_IsNull(j)) {
		out = NULL;
	} else {
		char *printed = cJSON_PrintUnformatted(j);

		out = xstrdup(printed);
		cJSON_free(printed);
	}
	cJSON_Delete(j);
	return out;
}
