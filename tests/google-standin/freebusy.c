/*
 * freebusy: Calendar's freebusy.query, POST /calendar/v3/freeBusy, and the
 * admin knobs that steer it (GET/POST/DELETE /_standin/freebusy).
 *
 * The request is {timeMin, timeMax, timeZone?, items: [{id}],
 * calendarExpansionMax?, groupExpansionMax?}. Request-level problems are
 * Google API errors (400 parseError, required, invalid, timeRangeEmpty,
 * timeRangeTooLong); problems with one calendar are reported inside the
 * 200, as Google does: {"errors": [{"domain", "reason"}], "busy": []}.
 *
 * A calendar's busy time is its events that are not cancelled, not
 * transparent ("Show as available") and not working-location entries,
 * clipped to [timeMin, timeMax), sorted, with overlapping or touching
 * spans merged. All-day events cover their whole days in their zone (the
 * instants store.c keeps). Google writes timeMin/timeMax back in UTC with
 * milliseconds ("…T05:00:00.000Z") whatever the zone, and the busy spans in
 * the requested timeZone without fraction ("…T10:00:00Z",
 * "…T15:00:00-05:00"); a zone it does not know is taken as UTC.
 */
#include "standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "datetime.h"
#include "log.h"
#include "tz.h"
#include "xmalloc.h"

#define SCOPE(s) SCOPE_PREFIX s

/* Google's largest freeBusy window is undocumented (community: about 2 to 3 months). */
#define FREEBUSY_DEFAULT_MAX_DAYS 62
/* FreeBusyRequest.calendarExpansionMax: "Maximum value is 50." */
#define FREEBUSY_MAX_CALENDARS 50

/* calendar.freebusy.query: the discovery doc's two, and the narrow ones Google's reference adds. */
static const char *const freebusy_scopes[] = {
    SCOPE("calendar"),
    SCOPE("calendar.readonly"),
    SCOPE("calendar.freebusy"),
    SCOPE("calendar.events.freebusy"),
    NULL,
};

/* A per-calendar error the admin API asked for. */
struct freebusy_error {
	char *domain;
	char *reason;
};

static struct map *freebusy_errors; /* lowercase email -> struct freebusy_error */
static long freebusy_max_days = FREEBUSY_DEFAULT_MAX_DAYS;

static void freebusy_free_error(void *p)
{
	struct freebusy_error *e = p;

	free(e->domain);
	free(e->reason);
	free(e);
}

void freebusy_init(void)
{
	freebusy_errors = map_new(freebusy_free_error);
	freebusy_max_days = FREEBUSY_DEFAULT_MAX_DAYS;
}

void freebusy_reset(void)
{
	map_clear(freebusy_errors);
	freebusy_max_days = FREEBUSY_DEFAULT_MAX_DAYS;
}

void freebusy_free(void)
{
	map_free(freebusy_errors);
	freebusy_errors = NULL;
}

/* Messages naming a value; single-threaded, each sent before the next is built. */
static char freebusy_msg[320];

static void freebusy_fail(struct exchange *ex, const char *domain, const char *reason, const char *message,
                          const char *location)
{
	struct api_error e = {.status = 400, .domain = domain, .reason = reason, .message = message};

	if (location != NULL) {
		e.location_type = "parameter";
		e.location = location;
	}
	exchange_api_error(ex, &e);
}

static void freebusy_invalid(struct exchange *ex, const char *name)
{
	snprintf(freebusy_msg, sizeof(freebusy_msg), "Invalid value for: %s", name);
	freebusy_fail(ex, "global", "invalid", freebusy_msg, name);
}

/*
 * timeMin/timeMax: RFC 3339 with an offset, as milliseconds since the
 * epoch. -1 once answered (missing: required; anything else: invalid).
 */
static int freebusy_instant(struct exchange *ex, const cJSON *body, const char *name, int64_t *ms)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
	struct datetime dt;

	if (v == NULL || cJSON_IsNull(v) || (cJSON_IsString(v) && v->valuestring[0] == '\0')) {
		snprintf(freebusy_msg, sizeof(freebusy_msg), "Missing %s.", name);
		freebusy_fail(ex, "global", "required", freebusy_msg, name);
		return -1;
	}
	if (!cJSON_IsString(v) || strchr(v->valuestring, ' ') != NULL ||
	    datetime_parse(v->valuestring, strlen(v->valuestring), &dt) < 0 || !dt.has_offset) {
		if (cJSON_IsString(v) && strlen(v->valuestring) < 64)
			snprintf(freebusy_msg, sizeof(freebusy_msg), "Invalid value for: Invalid format: \"%s\"",
			         v->valuestring);
		else
			snprintf(freebusy_msg, sizeof(freebusy_msg), "Invalid value for: %s", name);
		freebusy_fail(ex, "global", "invalid", freebusy_msg, name);
		return -1;
	}
	*ms = dt.epoch_s * 1000 + dt.nanosecond / 1000000;
	return 0;
}

/* An optional non-negative integer field; 0 when absent. -1 once answered. */
static int freebusy_count(struct exchange *ex, const cJSON *body, const char *name, long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);

	*out = 0;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 2147483647.0 ||
	    v->valuedouble != (double)(long)v->valuedouble) {
		freebusy_invalid(ex, name);
		return -1;
	}
	*out = (long)v->valuedouble;
	return 0;
}

struct freebusy_span {
	int64_t start, end; /* ms */
};

static int freebusy_by_start(const void *a, const void *b)
{
	const struct freebusy_span *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (x->end > y->end) - (x->end < y->end);
}

static bool freebusy_is(const cJSON *res, const char *field, const char *value)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, field);

	return cJSON_IsString(v) && strcmp(v->valuestring, value) == 0;
}

/* Whether the event blocks its owner's time. */
static bool freebusy_blocks(const struct cal_event *ev)
{
	return !freebusy_is(ev->res, "status", "cancelled") && !freebusy_is(ev->res, "transparency", "transparent") &&
	       !freebusy_is(ev->res, "eventType", "workingLocation");
}

/* Seconds (floored) and milliseconds of ms. */
static int64_t freebusy_split(int64_t ms, int *millis)
{
	int64_t s = ms / 1000 - (ms % 1000 < 0);

	*millis = (int)(ms - s * 1000);
	return s;
}

/* timeMin/timeMax as Google echoes them: UTC with milliseconds. */
static void freebusy_utc(int64_t ms, char *buf, size_t size)
{
	int millis;
	int64_t s = freebusy_split(ms, &millis);

	datetime_format_utc(s, millis, buf, size);
}

/* RFC 3339 in zone, as Google writes busy spans: "Z" at offset 0, fraction only when there is one. */
static void freebusy_format(int64_t ms, const char *zone, char *buf, size_t size)
{
	int millis;
	int64_t s = freebusy_split(ms, &millis);
	int off = 0;
	char tmp[40];

	if (tz_offset_at_utc(zone, s, &off) < 0)
		off = 0;
	datetime_format(s, off, tmp, sizeof(tmp));
	/* tmp is "YYYY-MM-DDThh:mm:ss+hh:mm": 19 characters, then the offset. */
	if (millis != 0)
		snprintf(buf, size, "%.19s.%03d%s", tmp, millis, off == 0 ? "Z" : tmp + 19);
	else
		snprintf(buf, size, "%.19s%s", tmp, off == 0 ? "Z" : tmp + 19);
}

static cJSON *freebusy_busy(const struct account *acct, int64_t tmin, int64_t tmax, const char *zone)
{
	struct freebusy_span *spans = xreallocarray(NULL, acct->nevents + 1, sizeof(*spans));
	cJSON *busy = cJSON_CreateArray();
	size_t n = 0, m = 0;

	for (size_t i = 0; i < acct->nevents; i++) {
		const struct cal_event *ev = acct->events[i];
		int64_t s = ev->start_s * 1000, e = ev->end_s * 1000;

		if (!freebusy_blocks(ev) || e <= s || e <= tmin || s >= tmax)
			continue;
		spans[n].start = s < tmin ? tmin : s;
		spans[n].end = e > tmax ? tmax : e;
		n++;
	}
	qsort(spans, n, sizeof(*spans), freebusy_by_start);
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && spans[i].start <= spans[m - 1].end) {
			if (spans[i].end > spans[m - 1].end)
				spans[m - 1].end = spans[i].end;
		} else {
			spans[m++] = spans[i];
		}
	}
	for (size_t i = 0; i < m; i++) {
		cJSON *p = cJSON_CreateObject();
		char when[48];

		freebusy_format(spans[i].start, zone, when, sizeof(when));
		cJSON_AddStringToObject(p, "start", when);
		freebusy_format(spans[i].end, zone, when, sizeof(when));
		cJSON_AddStringToObject(p, "end", when);
		cJSON_AddItemToArray(busy, p);
	}
	free(spans);
	return busy;
}

/* {"errors": [{domain, reason}], "busy": []}, Google's answer for a calendar it could not expand. */
static cJSON *freebusy_calendar_error(const char *domain, const char *reason)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *e = cJSON_CreateObject();

	cJSON_AddStringToObject(e, "domain", domain);
	cJSON_AddStringToObject(e, "reason", reason);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "errors"), e);
	cJSON_AddArrayToObject(o, "busy");
	return o;
}

void freebusy_query(struct exchange *ex)
{
	const struct access *a = oauth_authenticate(ex, freebusy_scopes);
	const cJSON *items, *item, *tzv;
	const char *zone = "UTC";
	int64_t tmin, tmax;
	long cal_max, group_max;
	size_t len, nitems;
	char *s, when[40];
	cJSON *body, *o, *cals;
	struct account *acct;
	struct map *seen;

	if (a == NULL)
		return;
	s = exchange_body(ex, &len);
	body = len == 0 ? cJSON_CreateObject() : cJSON_ParseWithLength(s, len);
	free(s);
	if (!cJSON_IsObject(body)) {
		cJSON_Delete(body);
		freebusy_fail(ex, "global", "parseError", "Parse Error", NULL);
		return;
	}
	if (freebusy_instant(ex, body, "timeMin", &tmin) < 0 || freebusy_instant(ex, body, "timeMax", &tmax) < 0)
		goto out;
	if (tmax <= tmin) {
		freebusy_fail(ex, "calendar", "timeRangeEmpty", "The specified time range is empty.", "timeMax");
		goto out;
	}
	if (tmax - tmin > (int64_t)freebusy_max_days * 86400000) {
		freebusy_fail(ex, "calendar", "timeRangeTooLong", "The requested time range is too long.", "timeMax");
		goto out;
	}
	tzv = cJSON_GetObjectItemCaseSensitive(body, "timeZone");
	if (tzv != NULL && !cJSON_IsNull(tzv)) {
		if (!cJSON_IsString(tzv)) {
			freebusy_invalid(ex, "timeZone");
			goto out;
		}
		/* Google answers in UTC for a zone it does not know ("-05:00" included) rather than failing. */
		if (tz_valid(tzv->valuestring))
			zone = tzv->valuestring;
	}
	if (freebusy_count(ex, body, "calendarExpansionMax", &cal_max) < 0 ||
	    freebusy_count(ex, body, "groupExpansionMax", &group_max) < 0)
		goto out;
	if (cal_max == 0 || cal_max > FREEBUSY_MAX_CALENDARS)
		cal_max = FREEBUSY_MAX_CALENDARS;
	items = cJSON_GetObjectItemCaseSensitive(body, "items");
	if (items != NULL && !cJSON_IsNull(items) && !cJSON_IsArray(items)) {
		freebusy_invalid(ex, "items");
		goto out;
	}
	cJSON_ArrayForEach(item, items) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");

		if (!cJSON_IsObject(item)) {
			freebusy_invalid(ex, "items");
			goto out;
		}
		if (id == NULL || cJSON_IsNull(id) || (cJSON_IsString(id) && id->valuestring[0] == '\0')) {
			freebusy_fail(ex, "global", "required", "Missing items.id.", "items.id");
			goto out;
		}
		if (!cJSON_IsString(id)) {
			freebusy_invalid(ex, "items.id");
			goto out;
		}
	}
	nitems = (size_t)cJSON_GetArraySize(items);
	acct = store_account(a->email);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "kind", "calendar#freeBusy");
	freebusy_utc(tmin, when, sizeof(when));
	cJSON_AddStringToObject(o, "timeMin", when);
	freebusy_utc(tmax, when, sizeof(when));
	cJSON_AddStringToObject(o, "timeMax", when);
	cals = cJSON_AddObjectToObject(o, "calendars");
	seen = map_new(NULL);
	cJSON_ArrayForEach(item, items) {
		const char *id = cJSON_GetObjectItemCaseSensitive(item, "id")->valuestring;
		const struct freebusy_error *fe;
		cJSON *entry;

		if (map_get(seen, id) != NULL)
			continue; /* asked twice: one answer under that key */
		map_set(seen, id, (void *)id);
		if (nitems > (size_t)cal_max)
			entry = freebusy_calendar_error("global", "tooManyCalendarsRequested");
		else if (strcmp(id, "primary") != 0 && strcasecmp(id, acct->email) != 0)
			entry = freebusy_calendar_error("global", "notFound");
		else if ((fe = map_get(freebusy_errors, acct->email)) != NULL)
			entry = freebusy_calendar_error(fe->domain, fe->reason);
		else {
			entry = cJSON_CreateObject();
			cJSON_AddItemToObject(entry, "busy", freebusy_busy(acct, tmin, tmax, zone));
		}
		cJSON_AddItemToObject(cals, id, entry);
	}
	map_free(seen);
	(void)group_max; /* no groups here: a group id is just an unknown calendar */
	cJSON_Delete(body);
	exchange_reply_json(ex, 200, o);
	return;
out:
	cJSON_Delete(body);
}

/* Admin: the settings as JSON; the caller deletes it. */
static bool freebusy_error_json(const char *key, void *value, void *arg)
{
	const struct freebusy_error *e = value;
	cJSON *o = cJSON_AddObjectToObject(arg, key);

	cJSON_AddStringToObject(o, "domain", e->domain);
	cJSON_AddStringToObject(o, "reason", e->reason);
	return false;
}

cJSON *freebusy_to_json(void)
{
	cJSON *o = cJSON_CreateObject();

	map_sweep(freebusy_errors, freebusy_error_json, cJSON_AddObjectToObject(o, "calendar_errors"));
	cJSON_AddNumberToObject(o, "max_range_days", (double)freebusy_max_days);
	return o;
}

/* Check one calendar_errors value; NULL value clears. 0 or -1 with *err. */
static int freebusy_check_error(const cJSON *v, const char **err)
{
	const cJSON *r, *d, *k;

	if (cJSON_IsNull(v) || (cJSON_IsString(v) && v->valuestring[0] != '\0'))
		return 0;
	if (!cJSON_IsObject(v)) {
		*err = "calendar_errors values must be a reason, {reason, domain?} or null";
		return -1;
	}
	cJSON_ArrayForEach(k, v) {
		if (strcmp(k->string, "reason") != 0 && strcmp(k->string, "domain") != 0) {
			*err = "unknown calendar_errors field (known: reason, domain)";
			return -1;
		}
	}
	r = cJSON_GetObjectItemCaseSensitive(v, "reason");
	d = cJSON_GetObjectItemCaseSensitive(v, "domain");
	if (!cJSON_IsString(r) || r->valuestring[0] == '\0' ||
	    (d != NULL && (!cJSON_IsString(d) || d->valuestring[0] == '\0'))) {
		*err = "calendar_errors reason and domain must be non-empty strings";
		return -1;
	}
	return 0;
}

int freebusy_set_json(const cJSON *obj, const char **err)
{
	const cJSON *errs = cJSON_GetObjectItemCaseSensitive(obj, "calendar_errors");
	const cJSON *days = cJSON_GetObjectItemCaseSensitive(obj, "max_range_days");
	const cJSON *v;

	cJSON_ArrayForEach(v, obj) {
		if (strcmp(v->string, "calendar_errors") != 0 && strcmp(v->string, "max_range_days") != 0) {
			*err = "unknown key (known: calendar_errors, max_range_days)";
			return -1;
		}
	}
	if (errs != NULL && !cJSON_IsObject(errs)) {
		*err = "calendar_errors must be an object {email: reason | {reason, domain} | null}";
		return -1;
	}
	cJSON_ArrayForEach(v, errs) {
		if (!util_valid_email(v->string)) {
			*err = "calendar_errors keys must be account emails";
			return -1;
		}
		if (freebusy_check_error(v, err) < 0)
			return -1;
	}
	if (days != NULL && (!cJSON_IsNumber(days) || days->valuedouble < 1 || days->valuedouble > 3660 ||
	                     days->valuedouble != (int)days->valuedouble)) {
		*err = "max_range_days must be an integer from 1 to 3660";
		return -1;
	}
	cJSON_ArrayForEach(v, errs) {
		char *key = util_lower(v->string);

		if (cJSON_IsNull(v)) {
			map_del(freebusy_errors, key);
		} else {
			struct freebusy_error *e = xcalloc(1, sizeof(*e));
			const cJSON *d = cJSON_GetObjectItemCaseSensitive(v, "domain");

			e->reason = xstrdup(cJSON_IsString(v) ? v->valuestring
			                                      : cJSON_GetObjectItemCaseSensitive(v, "reason")->valuestring);
			e->domain = xstrdup(cJSON_IsString(d) ? d->valuestring : "global");
			map_set(freebusy_errors, key, e);
		}
		free(key);
	}
	if (days != NULL)
		freebusy_max_days = (long)days->valuedouble;
	log_info("freebusy settings changed", LOG_INT("calendar_errors", (long long)map_count(freebusy_errors)),
	         LOG_INT("max_range_days", freebusy_max_days));
	return 0;
}
