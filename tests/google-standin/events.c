/*
 * events: the Event resource itself: which fields a client may write, how
 * Google checks them (ids, start/end, attendees, reminders), Meet
 * conferences, and the read-only fields Google fills in on every write.
 * No HTTP here; calendar.c calls these and answers.
 *
 * Error messages are Google's where they are known (docs/google.md,
 * "Event ids" and "Calendar errors"); clients must branch on status and reason, never on the text.
 */
#include "standin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "datetime.h"
#include "tz.h"
#include "xmalloc.h"

#define BASE32HEX "0123456789abcdefghijklmnopqrstuv"
#define MEET_ICON                                                                                                      \
	"https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/logo_meet_2020q4_color_2x_web_512dp.png"

enum events_type {
	T_STRING = 1,
	T_OBJECT = 2,
	T_ARRAY = 4,
	T_BOOL = 8,
	T_NUMBER = 16,
};

/* The fields a client writes; everything else in a body is ignored, as Google ignores read-only fields. */
static const struct {
	const char *name;
	int types;
} events_fields[] = {
    {"summary", T_STRING},
    {"description", T_STRING},
    {"location", T_STRING},
    {"colorId", T_STRING},
    {"start", T_OBJECT},
    {"end", T_OBJECT},
    {"endTimeUnspecified", T_BOOL},
    {"recurrence", T_ARRAY},
    {"originalStartTime", T_OBJECT},
    {"transparency", T_STRING},
    {"visibility", T_STRING},
    {"attendees", T_ARRAY},
    {"attendeesOmitted", T_BOOL},
    {"extendedProperties", T_OBJECT},
    {"reminders", T_OBJECT},
    {"status", T_STRING},
    {"source", T_OBJECT},
    {"guestsCanInviteOthers", T_BOOL},
    {"guestsCanModify", T_BOOL},
    {"guestsCanSeeOtherGuests", T_BOOL},
    {"anyoneCanAddSelf", T_BOOL},
    {"attachments", T_ARRAY},
    {"eventType", T_STRING},
    {"locked", T_BOOL},
    {"privateCopy", T_BOOL},
    {"focusTimeProperties", T_OBJECT},
    {"outOfOfficeProperties", T_OBJECT},
    {"workingLocationProperties", T_OBJECT},
};

/* Google's order of fields in an Event; what is not listed follows. */
static const char *const events_order[] = {
    "kind",
    "etag",
    "id",
    "status",
    "htmlLink",
    "created",
    "updated",
    "summary",
    "description",
    "location",
    "colorId",
    "creator",
    "organizer",
    "start",
    "end",
    "endTimeUnspecified",
    "recurrence",
    "originalStartTime",
    "transparency",
    "visibility",
    "iCalUID",
    "sequence",
    "attendees",
    "attendeesOmitted",
    "extendedProperties",
    "hangoutLink",
    "conferenceData",
    "anyoneCanAddSelf",
    "guestsCanInviteOthers",
    "guestsCanModify",
    "guestsCanSeeOtherGuests",
    "privateCopy",
    "locked",
    "reminders",
    "source",
    "attachments",
    "eventType",
};

/* Messages naming a value are built here; single-threaded, used at once. */
static char events_msg[256];

static const char *events_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *events_fmt(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(events_msg, sizeof(events_msg), fmt, ap);
	va_end(ap);
	return events_msg;
}

static int events_fail(struct api_error *err, int status, const char *domain, const char *reason, const char *message)
{
	*err = (struct api_error){.status = status, .domain = domain, .reason = reason, .message = message};
	return -1;
}

static bool events_type_ok(const cJSON *v, int types)
{
	return ((types & T_STRING) && cJSON_IsString(v)) || ((types & T_OBJECT) && cJSON_IsObject(v)) ||
	       ((types & T_ARRAY) && cJSON_IsArray(v)) || ((types & T_BOOL) && cJSON_IsBool(v)) ||
	       ((types & T_NUMBER) && cJSON_IsNumber(v));
}

static int events_check_attendees(const cJSON *list, struct api_error *err)
{
	const cJSON *a;

	cJSON_ArrayForEach(a, list) {
		const cJSON *email = cJSON_GetObjectItemCaseSensitive(a, "email");
		const cJSON *rs = cJSON_GetObjectItemCaseSensitive(a, "responseStatus");

		if (!cJSON_IsObject(a))
			return events_fail(err, 400, "global", "invalid", "Invalid attendee.");
		if (email == NULL || (cJSON_IsString(email) && email->valuestring[0] == '\0'))
			return events_fail(err, 400, "global", "required", "Missing attendee email.");
		if (!cJSON_IsString(email) || !util_valid_email(email->valuestring))
			return events_fail(err, 400, "global", "invalid", "Invalid attendee email.");
		if (rs != NULL &&
		    (!cJSON_IsString(rs) ||
		     (strcmp(rs->valuestring, "needsAction") != 0 && strcmp(rs->valuestring, "declined") != 0 &&
		      strcmp(rs->valuestring, "tentative") != 0 && strcmp(rs->valuestring, "accepted") != 0)))
			return events_fail(err, 400, "global", "invalid", "Invalid attendee response status.");
	}
	return 0;
}

static int events_check_reminders(const cJSON *r, struct api_error *err)
{
	const cJSON *use = cJSON_GetObjectItemCaseSensitive(r, "useDefault");
	const cJSON *over = cJSON_GetObjectItemCaseSensitive(r, "overrides");
	const cJSON *o;

	if (use != NULL && !cJSON_IsBool(use))
		return events_fail(err, 400, "global", "invalid", "Invalid value for: reminders.useDefault");
	if (over == NULL || cJSON_IsNull(over))
		return 0;
	if (!cJSON_IsArray(over))
		return events_fail(err, 400, "global", "invalid", "Invalid value for: reminders.overrides");
	if (cJSON_IsTrue(use) && cJSON_GetArraySize(over) > 0)
		return events_fail(err, 400, "global", "cannotUseDefaultRemindersAndSpecifyOverride",
		                   "Cannot specify both default reminders and overrides at the same time.");
	if (cJSON_GetArraySize(over) > 5)
		return events_fail(err, 400, "global", "invalid", "Cannot specify more than 5 override reminders.");
	cJSON_ArrayForEach(o, over) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "method");
		const cJSON *min = cJSON_GetObjectItemCaseSensitive(o, "minutes");

		if (!cJSON_IsString(m) ||
		    (strcmp(m->valuestring, "email") != 0 && strcmp(m->valuestring, "popup") != 0))
			return events_fail(err, 400, "global", "required", "Missing reminder method.");
		if (!cJSON_IsNumber(min) || min->valuedouble < 0 || min->valuedouble > 40320)
			return events_fail(err, 400, "global", "invalid", "Invalid reminder minutes.");
	}
	return 0;
}

static int events_check_properties(const cJSON *ep, struct api_error *err)
{
	const char *const parts[] = {"private", "shared"};

	for (size_t i = 0; i < 2; i++) {
		const cJSON *part = cJSON_GetObjectItemCaseSensitive(ep, parts[i]);
		const cJSON *v;

		if (part == NULL || cJSON_IsNull(part))
			continue;
		if (!cJSON_IsObject(part))
			return events_fail(err, 400, "global", "invalid",
			                   events_fmt("Invalid value for: extendedProperties.%s", parts[i]));
		cJSON_ArrayForEach(v, part) {
			if (!cJSON_IsString(v))
				return events_fail(
				    err, 400, "global", "invalid",
				    events_fmt("Invalid value for: extendedProperties.%s.%s", parts[i], v->string));
		}
	}
	return 0;
}

/* Check one writable field's value; 0 or -1 with *err. */
static int events_check_field(const char *name, int types, const cJSON *v, struct api_error *err)
{
	if (!events_type_ok(v, types))
		return events_fail(err, 400, "global", "invalid", events_fmt("Invalid value for: %s", name));
	if (strcmp(name, "status") == 0 && strcmp(v->valuestring, "confirmed") != 0 &&
	    strcmp(v->valuestring, "tentative") != 0 && strcmp(v->valuestring, "cancelled") != 0)
		return events_fail(err, 400, "global", "invalid", "Invalid value for: status");
	if (strcmp(name, "attendees") == 0)
		return events_check_attendees(v, err);
	if (strcmp(name, "reminders") == 0)
		return events_check_reminders(v, err);
	if (strcmp(name, "extendedProperties") == 0)
		return events_check_properties(v, err);
	return 0;
}

/* Copy or (for null) remove the writable fields of body in res. */
static int events_merge(cJSON *res, const cJSON *body, struct api_error *err)
{
	for (size_t i = 0; i < sizeof(events_fields) / sizeof(*events_fields); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, events_fields[i].name);

		if (v == NULL)
			continue;
		if (cJSON_IsNull(v)) {
			cJSON_DeleteItemFromObjectCaseSensitive(res, events_fields[i].name);
			continue;
		}
		if (events_check_field(events_fields[i].name, events_fields[i].types, v, err) < 0)
			return -1;
		cJSON_DeleteItemFromObjectCaseSensitive(res, events_fields[i].name);
		cJSON_AddItemToObject(res, events_fields[i].name, cJSON_Duplicate(v, 1));
	}
	return 0;
}

cJSON *events_from_body(const cJSON *body, struct api_error *err)
{
	cJSON *res = cJSON_CreateObject();

	if (events_merge(res, body, err) < 0) {
		cJSON_Delete(res);
		return NULL;
	}
	return res;
}

int events_patch(cJSON *res, const cJSON *body, struct api_error *err)
{
	return events_merge(res, body, err);
}

static bool events_parse_date(const char *s, int *y, int *m, int *d)
{
	struct datetime dt;
	char buf[32];

	/* datetime_parse wants a time; a date alone gets midnight to reuse its range checks. */
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
	if (datetime_parse(buf, strlen(buf), &dt) < 0)
		return false;
	*y = dt.year;
	*m = dt.month;
	*d = dt.day;
	return true;
}

/*
 * One EventDateTime as an instant. which is "start" or "end" for messages;
 * *all_day says whether it was a date.
 */
static int events_instant(const cJSON *edt, const char *which, const char *cal_zone, int64_t *out, bool *all_day,
                          struct api_error *err)
{
	const cJSON *date = cJSON_GetObjectItemCaseSensitive(edt, "date");
	const cJSON *dtv = cJSON_GetObjectItemCaseSensitive(edt, "dateTime");
	const cJSON *zone = cJSON_GetObjectItemCaseSensitive(edt, "timeZone");
	const char *z = cal_zone;
	struct datetime dt;

	if (cJSON_IsNull(date))
		date = NULL;
	if (cJSON_IsNull(dtv))
		dtv = NULL;
	if (cJSON_IsNull(zone))
		zone = NULL;
	if (!cJSON_IsObject(edt) || (date == NULL && dtv == NULL))
		return events_fail(err, 400, "global", "required", events_fmt("Missing %s time.", which));
	if (zone != NULL) {
		if (!cJSON_IsString(zone) || !tz_valid(zone->valuestring))
			return events_fail(err, 400, "global", "invalid",
			                   events_fmt("Invalid time zone definition for %s time.", which));
		z = zone->valuestring;
	}
	if (date != NULL && dtv != NULL)
		return events_fail(err, 400, "global", "invalid", events_fmt("Invalid %s time.", which));
	*all_day = date != NULL;
	if (date != NULL) {
		int y, m, d, off;

		if (!cJSON_IsString(date) || !events_parse_date(date->valuestring, &y, &m, &d))
			return events_fail(err, 400, "global", "invalid", events_fmt("Invalid %s time.", which));
		if (tz_offset_at_local(z, y, m, d, 0, 0, 0, &off) < 0)
			off = 0;
		*out = datetime_days_from_civil(y, m, d) * 86400 - off;
		return 0;
	}
	if (!cJSON_IsString(dtv) || strchr(dtv->valuestring, ' ') != NULL ||
	    datetime_parse(dtv->valuestring, strlen(dtv->valuestring), &dt) < 0)
		return events_fail(err, 400, "global", "invalid", events_fmt("Invalid %s time.", which));
	if (!dt.has_offset) {
		if (zone == NULL)
			return events_fail(err, 400, "global", "required",
			                   events_fmt("Missing time zone definition for %s time.", which));
		if (datetime_resolve(&dt, z) < 0)
			return events_fail(err, 400, "global", "invalid",
			                   events_fmt("Invalid time zone definition for %s time.", which));
	}
	*out = dt.epoch_s;
	return 0;
}

int events_times(const cJSON *res, const char *zone, int64_t *start_s, int64_t *end_s, struct api_error *err)
{
	const cJSON *start = cJSON_GetObjectItemCaseSensitive(res, "start");
	const cJSON *end = cJSON_GetObjectItemCaseSensitive(res, "end");
	bool start_day, end_day;

	if (start == NULL)
		return events_fail(err, 400, "global", "required", "Missing start time.");
	if (end == NULL)
		return events_fail(err, 400, "global", "required", "Missing end time.");
	if (events_instant(start, "start", zone, start_s, &start_day, err) < 0 ||
	    events_instant(end, "end", zone, end_s, &end_day, err) < 0)
		return -1;
	if (start_day != end_day)
		return events_fail(err, 400, "global", "invalid",
		                   "Start and end times must either both be date or both be dateTime.");
	/* end is exclusive: an all-day event needs a later date; a timed one may last zero seconds. */
	if (*end_s < *start_s || (start_day && *end_s == *start_s))
		return events_fail(err, 400, "calendar", "timeRangeEmpty", "The specified time range is empty.");
	return 0;
}

static void events_set(cJSON *res, const char *key, cJSON *item)
{
	cJSON_DeleteItemFromObjectCaseSensitive(res, key);
	cJSON_AddItemToObject(res, key, item);
}

static void events_drop_conference(cJSON *res)
{
	cJSON_DeleteItemFromObjectCaseSensitive(res, "conferenceData");
	cJSON_DeleteItemFromObjectCaseSensitive(res, "hangoutLink");
}

/* A new Meet conference, ready as Google answers it once creation succeeded. */
static cJSON *events_meet(const char *request_id)
{
	char code[13];
	cJSON *cd = cJSON_CreateObject();
	cJSON *cr = cJSON_AddObjectToObject(cd, "createRequest");
	cJSON *ep = cJSON_CreateObject();
	cJSON *sol;
	char *uri, *label;

	/* Meet codes are three, four and three lowercase letters. */
	for (int i = 0; i < 12; i++)
		code[i] = (i == 3 || i == 8) ? '-' : (char)('a' + randombytes_uniform(26));
	code[12] = '\0';
	cJSON_AddStringToObject(cr, "requestId", request_id);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(cr, "conferenceSolutionKey"), "type", "hangoutsMeet");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(cr, "status"), "statusCode", "success");
	uri = xasprintf("https://meet.google.com/%s", code);
	label = xasprintf("meet.google.com/%s", code);
	cJSON_AddStringToObject(ep, "entryPointType", "video");
	cJSON_AddStringToObject(ep, "uri", uri);
	cJSON_AddStringToObject(ep, "label", label);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(cd, "entryPoints"), ep);
	sol = cJSON_AddObjectToObject(cd, "conferenceSolution");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(sol, "key"), "type", "hangoutsMeet");
	cJSON_AddStringToObject(sol, "name", "Google Meet");
	cJSON_AddStringToObject(sol, "iconUri", MEET_ICON);
	cJSON_AddStringToObject(cd, "conferenceId", code);
	free(uri);
	free(label);
	return cd;
}

/* hangoutLink mirrors the conference's video entry point. */
static void events_link(cJSON *res)
{
	const cJSON *cd = cJSON_GetObjectItemCaseSensitive(res, "conferenceData");
	const cJSON *ep;

	cJSON_DeleteItemFromObjectCaseSensitive(res, "hangoutLink");
	cJSON_ArrayForEach(ep, cJSON_GetObjectItemCaseSensitive(cd, "entryPoints")) {
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(ep, "entryPointType");
		const cJSON *uri = cJSON_GetObjectItemCaseSensitive(ep, "uri");

		if (cJSON_IsString(type) && strcmp(type->valuestring, "video") == 0 && cJSON_IsString(uri)) {
			cJSON_AddStringToObject(res, "hangoutLink", uri->valuestring);
			return;
		}
	}
}

int events_conference(cJSON *res, const cJSON *body, bool replace, struct api_error *err)
{
	const cJSON *cd = cJSON_GetObjectItemCaseSensitive(body, "conferenceData");
	const cJSON *cr, *rid, *key, *type, *old_rid;

	if (cd == NULL) {
		if (replace)
			events_drop_conference(res);
		return 0;
	}
	if (cJSON_IsNull(cd)) {
		events_drop_conference(res);
		return 0;
	}
	if (!cJSON_IsObject(cd))
		return events_fail(err, 400, "global", "invalid", "Invalid value for: conferenceData");
	cr = cJSON_GetObjectItemCaseSensitive(cd, "createRequest");
	if (cr == NULL || cJSON_IsNull(cr)) {
		/* A client copying an existing conference onto the event. */
		events_set(res, "conferenceData", cJSON_Duplicate(cd, 1));
		events_link(res);
		return 0;
	}
	rid = cJSON_GetObjectItemCaseSensitive(cr, "requestId");
	key = cJSON_GetObjectItemCaseSensitive(cr, "conferenceSolutionKey");
	type = cJSON_GetObjectItemCaseSensitive(key, "type");
	if (!cJSON_IsString(rid) || rid->valuestring[0] == '\0')
		return events_fail(err, 400, "global", "invalid",
		                   "Invalid conference create request: missing requestId.");
	if (!cJSON_IsString(type) || strcmp(type->valuestring, "hangoutsMeet") != 0)
		return events_fail(err, 400, "global", "invalid", "Invalid conference type value.");
	old_rid = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "conferenceData"), "createRequest"),
	    "requestId");
	/* Re-sending the same requestId is ignored: the conference stays. */
	if (cJSON_IsString(old_rid) && strcmp(old_rid->valuestring, rid->valuestring) == 0)
		return 0;
	events_set(res, "conferenceData", events_meet(rid->valuestring));
	events_link(res);
	return 0;
}

bool events_significant(const cJSON *old, const cJSON *res)
{
	static const char *const fields[] = {"start", "end", "summary", "attendees", "status"};

	for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(old, fields[i]);
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(res, fields[i]);

		if ((a == NULL) != (b == NULL) || (a != NULL && !cJSON_Compare(a, b, 1)))
			return true;
	}
	return false;
}

bool events_valid_id(const char *id)
{
	size_t n = strlen(id);

	return n >= 5 && n <= 1024 && strspn(id, BASE32HEX) == n;
}

char *events_new_id(void)
{
	char *id = xmalloc(27);

	for (int i = 0; i < 26; i++)
		id[i] = BASE32HEX[randombytes_uniform(32)];
	id[26] = '\0';
	return id;
}

/* The attendee that is the calendar's owner is marked, as Google marks it. */
static void events_attendees(cJSON *res, const char *owner)
{
	cJSON *a;

	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(res, "attendees")) {
		const cJSON *email = cJSON_GetObjectItemCaseSensitive(a, "email");

		if (cJSON_IsString(email) && strcasecmp(email->valuestring, owner) == 0) {
			events_set(a, "organizer", cJSON_CreateTrue());
			events_set(a, "self", cJSON_CreateTrue());
		}
		if (cJSON_GetObjectItemCaseSensitive(a, "responseStatus") == NULL)
			cJSON_AddStringToObject(a, "responseStatus", "needsAction");
	}
}

static cJSON *events_person(const char *email)
{
	cJSON *p = cJSON_CreateObject();

	cJSON_AddStringToObject(p, "email", email);
	cJSON_AddBoolToObject(p, "self", 1);
	return p;
}

void events_stamp(struct cal_event *ev, int64_t now_ms)
{
	static unsigned etag_seq;
	cJSON *res = ev->res, *ordered;
	char when[32], *etag, *eid_raw, *eid, *link, *uid;

	util_format_time(now_ms, when, sizeof(when));
	/* A quoted number that changes on every write, even within one millisecond. */
	etag = xasprintf("\"%lld%03u\"", (long long)now_ms, etag_seq++ % 1000);
	eid_raw = xasprintf("%s %s", ev->id, ev->account->email);
	eid = util_base64url((const unsigned char *)eid_raw, strlen(eid_raw));
	link = xasprintf("https://www.google.com/calendar/event?eid=%s", eid);
	uid = xasprintf("%s@google.com", ev->id);
	events_set(res, "kind", cJSON_CreateString("calendar#event"));
	events_set(res, "etag", cJSON_CreateString(etag));
	events_set(res, "id", cJSON_CreateString(ev->id));
	if (cJSON_GetObjectItemCaseSensitive(res, "status") == NULL)
		cJSON_AddStringToObject(res, "status", "confirmed");
	events_set(res, "htmlLink", cJSON_CreateString(link));
	if (cJSON_GetObjectItemCaseSensitive(res, "created") == NULL)
		cJSON_AddStringToObject(res, "created", when);
	events_set(res, "updated", cJSON_CreateString(when));
	events_set(res, "creator", events_person(ev->account->email));
	events_set(res, "organizer", events_person(ev->account->email));
	if (cJSON_GetObjectItemCaseSensitive(res, "iCalUID") == NULL)
		cJSON_AddStringToObject(res, "iCalUID", uid);
	events_set(res, "sequence", cJSON_CreateNumber(ev->sequence));
	if (cJSON_GetObjectItemCaseSensitive(res, "reminders") == NULL)
		cJSON_AddBoolToObject(cJSON_AddObjectToObject(res, "reminders"), "useDefault", 1);
	if (cJSON_GetObjectItemCaseSensitive(res, "eventType") == NULL)
		cJSON_AddStringToObject(res, "eventType", "default");
	events_attendees(res, ev->account->email);
	ordered = cJSON_CreateObject();
	for (size_t i = 0; i < sizeof(events_order) / sizeof(*events_order); i++) {
		cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(res, events_order[i]);

		if (item != NULL)
			cJSON_AddItemToObject(ordered, events_order[i], item);
	}
	while (res->child != NULL) {
		cJSON *item = cJSON_DetachItemViaPointer(res, res->child);

		cJSON_AddItemToObject(ordered, item->string, item);
	}
	cJSON_Delete(res);
	ev->res = ordered;
	ev->updated_ms = now_ms;
	free(etag);
	free(eid_raw);
	free(eid);
	free(link);
	free(uid);
}
