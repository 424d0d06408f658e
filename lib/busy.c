/*
 * busy: busy and free spans (see busy.h).
 */
#include "busy.h"

#include <stdlib.h>
#include <string.h>

#include "datetime.h"
#include "tz.h"
#include "xmalloc.h"

void busy_clear(struct busy_list *l)
{
	free(l->spans);
	memset(l, 0, sizeof(*l));
}

void busy_add(struct busy_list *l, int64_t start_s, int64_t end_s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->spans = xrealloc(l->spans, l->cap * sizeof(*l->spans));
	}
	l->spans[l->n].start_s = start_s;
	l->spans[l->n].end_s = end_s;
	l->n++;
}

static int busy_cmp(const void *a, const void *b)
{
	const struct busy_span *x = a, *y = b;

	if (x->start_s != y->start_s)
		return x->start_s < y->start_s ? -1 : 1;
	return (x->end_s > y->end_s) - (x->end_s < y->end_s);
}

void busy_normalise(struct busy_list *l)
{
	size_t out = 0;

	if (l->n > 1)
		qsort(l->spans, l->n, sizeof(*l->spans), busy_cmp);
	for (size_t i = 0; i < l->n; i++) {
		struct busy_span s = l->spans[i];

		if (s.end_s <= s.start_s)
			continue;
		if (out > 0 && s.start_s <= l->spans[out - 1].end_s) {
			if (s.end_s > l->spans[out - 1].end_s)
				l->spans[out - 1].end_s = s.end_s;
			continue;
		}
		l->spans[out++] = s;
	}
	l->n = out;
}

/* One of freeBusy's times; Google writes them in RFC 3339 with an offset. */
static int busy_time(const cJSON *item, const char *key, int64_t *out)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, key));
	struct datetime dt;

	if (s == NULL || datetime_parse(s, strlen(s), &dt) < 0 || !dt.has_offset)
		return -1;
	*out = dt.epoch_s;
	return 0;
}

int busy_from_freebusy(const cJSON *answer, const char *calendar_id, int64_t from_s, int64_t to_s,
		       struct busy_list *out, const char **error)
{
	const cJSON *cal = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(answer, "calendars"),
							     calendar_id);
	const cJSON *errors = cJSON_GetObjectItemCaseSensitive(cal, "errors");
	const cJSON *busy = cJSON_GetObjectItemCaseSensitive(cal, "busy");
	const cJSON *span;

	*error = NULL;
	if (!cJSON_IsObject(cal))
		return -1;
	if (cJSON_IsArray(errors) && cJSON_GetArraySize(errors) > 0) {
		const char *reason =
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(errors, 0), "reason"));

		*error = reason != NULL && *reason != '\0' ? reason : "unknown";
		return 0;
	}
	if (busy != NULL && !cJSON_IsArray(busy))
		return -1;
	cJSON_ArrayForEach(span, busy) {
		int64_t start, end;

		if (busy_time(span, "start", &start) < 0 || busy_time(span, "end", &end) < 0) {
			busy_clear(out);
			return -1;
		}
		busy_add(out, start > from_s ? start : from_s, end < to_s ? end : to_s);
	}
	busy_normalise(out);
	return 0;
}

void busy_subtract(struct busy_list *l, int64_t start_s, int64_t end_s)
{
	struct busy_list kept = { 0 };

	if (end_s <= start_s)
		return;
	for (size_t i = 0; i < l->n; i++) {
		struct busy_span s = l->spans[i];

		if (s.end_s <= start_s || s.start_s >= end_s) {
			busy_add(&kept, s.start_s, s.end_s);
			continue;
		}
		if (s.start_s < start_s)
			busy_add(&kept, s.start_s, start_s);
		if (s.end_s > end_s)
			busy_add(&kept, end_s, s.end_s);
	}
	busy_clear(l);
	*l = kept;
}

bool busy_overlaps(const struct busy_list *l, int64_t start_s, int64_t end_s)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->spans[i].start_s < end_s && l->spans[i].end_s > start_s)
			return true;
	return false;
}

void busy_free_gaps(const struct busy_list *busy, int64_t from_s, int64_t to_s, int64_t min_s,
		    struct busy_list *out)
{
	int64_t at = from_s;

	if (min_s < 1)
		min_s = 1;
	for (size_t i = 0; i <= busy->n && at < to_s; i++) {
		int64_t until = i < busy->n ? busy->spans[i].start_s : to_s;

		if (until > to_s)
			until = to_s;
		if (until - at >= min_s)
			busy_add(out, at, until);
		if (i < busy->n && busy->spans[i].end_s > at)
			at = busy->spans[i].end_s;
	}
}

/* t in RFC 3339 at zone's offset then (UTC for no zone or an unknown one); buf needs 26 bytes. */
static void busy_format(int64_t t, const char *zone, char *buf, size_t size)
{
	int off;

	if (zone == NULL || tz_offset_at_utc(zone, t, &off) < 0)
		off = 0;
	datetime_format(t, off, buf, size);
}

cJSON *busy_to_json(const struct busy_list *l, const char *zone)
{
	cJSON *arr = cJSON_CreateArray();

	for (size_t i = 0; i < l->n; i++) {
		cJSON *o = cJSON_CreateObject();
		char buf[40];

		busy_format(l->spans[i].start_s, zone, buf, sizeof(buf));
		cJSON_AddStringToObject(o, "start", buf);
		busy_format(l->spans[i].end_s, zone, buf, sizeof(buf));
		cJSON_AddStringToObject(o, "end", buf);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

char *busy_to_text(const struct busy_list *l, const char *zone, size_t max_spans)
{
	char *text = xstrdup("");

	for (size_t i = 0; i < l->n; i++) {
		char start[40], end[40], *next;

		if (i == max_spans) {
			next = xasprintf("%s and %zu more", text, l->n - i);
			free(text);
			return next;
		}
		busy_format(l->spans[i].start_s, zone, start, sizeof(start));
		busy_format(l->spans[i].end_s, zone, end, sizeof(end));
		next = xasprintf("%s%s%s to %s", text, i > 0 ? ", " : "", start, end);
		free(text);
		text = next;
	}
	return text;
}
