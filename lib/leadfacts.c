/*
 * leadfacts: a lead's facts as the rep reads them (see leadfacts.h).
 */
#include "leadfacts.h"

#include <stdlib.h>

#include <cJSON.h>

#include "xmalloc.h"

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
