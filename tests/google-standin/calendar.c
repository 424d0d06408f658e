/*
 * calendar: the Calendar v3 endpoints under /calendar/v3/.
 *
 *   POST   calendars/{cal}/events          events.insert
 *   GET    calendars/{cal}/events          events.list
 *   GET    calendars/{cal}/events/{id}     events.get
 *   PATCH  calendars/{cal}/events/{id}     events.patch
 *   PUT    calendars/{cal}/events/{id}     events.update
 *   DELETE calendars/{cal}/events/{id}     events.delete
 *   GET    calendars/{cal}                 calendars.get
 *   GET    users/me/calendarList/{cal}     calendarList.get
 *   GET    users/me/settings/timezone      settings.get
 *   POST   freeBusy                        freebusy.query (freebusy.c)
 *
 * Each request is authenticated first (401/403 as Google), then its
 * calendar resolved: "primary" or the account's own email; any other
 * calendar is 404, since an account here owns exactly one. Every write
 * records its sendUpdates and conferenceDataVersion on the event for the
 * admin view, so tests can assert a client's notification policy.
 */
#include "standin.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmalloc.h"

#define SCOPE(s) "https://www.googleapis.com/auth/" s

static const char *const calendar_write_scopes[] = {
    SCOPE("calendar"),
    SCOPE("calendar.events"),
    SCOPE("calendar.events.owned"),
    NULL,
};

static const char *const calendar_read_scopes[] = {
    SCOPE("calendar"),
    SCOPE("calendar.events"),
    SCOPE("calendar.events.owned"),
    SCOPE("calendar.readonly"),
    SCOPE("calendar.events.readonly"),
    SCOPE("calendar.events.owned.readonly"),
    NULL,
};

static const char *const calendar_calendars_scopes[] = {
    SCOPE("calendar"),
    SCOPE("calendar.readonly"),
    SCOPE("calendar.calendars"),
    SCOPE("calendar.calendars.readonly"),
    NULL,
};

static const char *const calendar_list_scopes[] = {
    SCOPE("calendar"),
    SCOPE("calendar.readonly"),
    SCOPE("calendar.calendarlist"),
    SCOPE("calendar.calendarlist.readonly"),
    NULL,
};

static const char *const calendar_settings_scopes[] = {
    SCOPE("calendar"),
    SCOPE("calendar.readonly"),
    SCOPE("calendar.settings.readonly"),
    NULL,
};

/* The query parameters of a write, as recorded for the admin view. */
struct calendar_write {
	const char *send_updates; /* NULL when absent */
	int conference_version;   /* -1 when absent */
};

/* Messages naming a value; single-threaded, and each is sent before the next is built. */
static char calendar_msg[256];

static void calendar_error(struct exchange *ex, int status, const char *domain, const char *reason, const char *message)
{
	struct api_error e = {.status = status, .domain = domain, .reason = reason, .message = message};

	exchange_api_error(ex, &e);
}

static void calendar_not_found(struct exchange *ex)
{
	calendar_error(ex, 404, "global", "notFound", "Not Found");
}

static void calendar_invalid_param(struct exchange *ex, const char *name, const char *value, const char *rule)
{
	struct api_error e = {
	    .status = 400, .domain = "global", .reason = "invalid", .location_type = "parameter", .location = name};

	snprintf(calendar_msg, sizeof(calendar_msg), "Invalid value '%s'. %s", value, rule);
	e.message = calendar_msg;
	exchange_api_error(ex, &e);
}

/* Authenticate and resolve the calendar of ex->seg[0]; NULL once answered. */
static struct account *calendar_account(struct exchange *ex, const char *const *scopes)
{
	const struct access *a = oauth_authenticate(ex, scopes);

	if (a == NULL)
		return NULL;
	if (strcmp(ex->seg[0], "primary") != 0 && strcasecmp(ex->seg[0], a->email) != 0) {
		calendar_not_found(ex);
		return NULL;
	}
	return store_account(a->email);
}

static int calendar_write_params(struct exchange *ex, struct calendar_write *w)
{
	const char *su = form_get(ex->query, "sendUpdates");
	const char *cdv = form_get(ex->query, "conferenceDataVersion");
	long v;

	w->send_updates = su;
	w->conference_version = -1;
	if (su != NULL && strcmp(su, "all") != 0 && strcmp(su, "externalOnly") != 0 && strcmp(su, "none") != 0) {
		calendar_invalid_param(ex, "sendUpdates", su,
		                       "Values must match the following regular expression: '(all|externalOnly|none)'");
		return -1;
	}
	if (cdv != NULL) {
		if (util_parse_long(cdv, 0, 1, &v) < 0) {
			calendar_invalid_param(ex, "conferenceDataVersion", cdv,
			                       "Values must be within the range: [0, 1]");
			return -1;
		}
		w->conference_version = (int)v;
	}
	return 0;
}

/* The body as a JSON object (an empty body is an empty resource); NULL once answered. */
static cJSON *calendar_body(struct exchange *ex)
{
	size_t len;
	char *s = exchange_body(ex, &len);
	cJSON *j;

	if (len == 0) {
		free(s);
		return cJSON_CreateObject();
	}
	j = cJSON_ParseWithLength(s, len);
	free(s);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		calendar_error(ex, 400, "global", "parseError", "Parse Error");
		return NULL;
	}
	return j;
}

/* If-Match with a stale etag is 412, so clients can do safe read-modify-write. */
static int calendar_if_match(struct exchange *ex, const struct cal_event *ev)
{
	const char *want = exchange_header(ex, "If-Match");
	const cJSON *etag = cJSON_GetObjectItemCaseSensitive(ev->res, "etag");
	struct api_error e = {.status = 412,
	                      .domain = "global",
	                      .reason = "conditionNotMet",
	                      .message = "Precondition Failed",
	                      .location_type = "header",
	                      .location = "If-Match"};

	if (want == NULL || strcmp(want, "*") == 0 || strcmp(want, etag->valuestring) == 0)
		return 0;
	exchange_api_error(ex, &e);
	return -1;
}

static void calendar_record(struct cal_event *ev, const char *op, const struct calendar_write *w, int64_t now)
{
	cJSON *rec = cJSON_CreateObject();
	char when[32];

	util_format_time(now, when, sizeof(when));
	cJSON_AddStringToObject(rec, "op", op);
	if (w->send_updates != NULL)
		cJSON_AddStringToObject(rec, "send_updates", w->send_updates);
	else
		cJSON_AddNullToObject(rec, "send_updates");
	if (w->conference_version >= 0)
		cJSON_AddNumberToObject(rec, "conference_data_version", w->conference_version);
	else
		cJSON_AddNullToObject(rec, "conference_data_version");
	cJSON_AddStringToObject(rec, "time", when);
	if (ev->writes == NULL)
		ev->writes = cJSON_CreateArray();
	cJSON_AddItemToArray(ev->writes, rec);
	ev->account->updated_ms = now;
}

/* Stamp the new resource, record the write and answer it. */
static void calendar_commit(struct exchange *ex, struct cal_event *ev, const char *op, const struct calendar_write *w)
{
	int64_t now = util_now_ms();

	events_stamp(ev, now);
	calendar_record(ev, op, w, now);
	exchange_reply_json(ex, 200, cJSON_Duplicate(ev->res, 1));
}

/*
 * Check body as events.insert does and file the new event in acct (not yet
 * stamped nor recorded). conference: conferenceDataVersion=1. NULL with *err.
 */
static struct cal_event *calendar_file(struct account *acct, const cJSON *body, bool conference, struct api_error *err)
{
	const cJSON *idv = cJSON_GetObjectItemCaseSensitive(body, "id");
	struct cal_event *ev;
	int64_t start, end;
	cJSON *res;

	if (idv != NULL && !cJSON_IsNull(idv) && (!cJSON_IsString(idv) || !events_valid_id(idv->valuestring))) {
		*err = (struct api_error){
		    .status = 400, .domain = "global", .reason = "invalid", .message = "Invalid resource id value."};
		return NULL;
	}
	if (!cJSON_IsString(idv))
		idv = NULL;
	res = events_from_body(body, err);
	if (res == NULL || events_times(res, store_timezone(acct), &start, &end, err) < 0 ||
	    (conference && events_conference(res, body, true, err) < 0)) {
		cJSON_Delete(res);
		return NULL;
	}
	/* Deleted events keep their id: a second insert with it is a 409 too. */
	if (idv != NULL && store_get_event(acct, idv->valuestring) != NULL) {
		cJSON_Delete(res);
		*err = (struct api_error){.status = 409,
		                          .domain = "global",
		                          .reason = "duplicate",
		                          .message = "The requested identifier already exists."};
		return NULL;
	}
	ev = xcalloc(1, sizeof(*ev));
	ev->account = acct;
	if (idv != NULL) {
		ev->id = xstrdup(idv->valuestring);
	} else {
		do {
			free(ev->id);
			ev->id = events_new_id();
		} while (store_get_event(acct, ev->id) != NULL);
	}
	ev->res = res;
	ev->start_s = start;
	ev->end_s = end;
	store_add_event(ev);
	return ev;
}

static void calendar_insert(struct exchange *ex)
{
	struct account *acct = calendar_account(ex, calendar_write_scopes);
	struct calendar_write w;
	struct api_error err;
	struct cal_event *ev;
	cJSON *body;

	if (acct == NULL || calendar_write_params(ex, &w) < 0 || (body = calendar_body(ex)) == NULL)
		return;
	ev = calendar_file(acct, body, w.conference_version == 1, &err);
	cJSON_Delete(body);
	if (ev == NULL) {
		exchange_api_error(ex, &err);
		return;
	}
	calendar_commit(ex, ev, "insert", &w);
}

struct cal_event *calendar_ui_insert(struct account *acct, const cJSON *body, struct api_error *err)
{
	/* The UI sends no notification choice and makes no Meet link unless asked; record neither. */
	struct calendar_write w = {.send_updates = NULL, .conference_version = -1};
	struct cal_event *ev = calendar_file(acct, body, false, err);
	int64_t now;

	if (ev == NULL)
		return NULL;
	now = util_now_ms();
	events_stamp(ev, now);
	calendar_record(ev, "ui.insert", &w, now);
	return ev;
}

static struct cal_event *calendar_find(struct exchange *ex, struct account *acct)
{
	struct cal_event *ev = store_get_event(acct, ex->seg[1]);

	if (ev == NULL)
		calendar_not_found(ex);
	return ev;
}

static void calendar_get(struct exchange *ex)
{
	struct account *acct = calendar_account(ex, calendar_read_scopes);
	struct cal_event *ev;

	if (acct == NULL || (ev = calendar_find(ex, acct)) == NULL)
		return;
	exchange_reply_json(ex, 200, cJSON_Duplicate(ev->res, 1));
}

/*
 * Patch and update share everything but how the new resource is built:
 * patch merges the body into a copy, update starts from the body alone and
 * keeps only what a client cannot write.
 */
static void calendar_modify(struct exchange *ex, bool replace)
{
	struct account *acct = calendar_account(ex, calendar_write_scopes);
	struct calendar_write w;
	struct api_error err;
	struct cal_event *ev;
	cJSON *body, *res;
	int64_t start, end;
	int rc;

	if (acct == NULL || calendar_write_params(ex, &w) < 0 || (ev = calendar_find(ex, acct)) == NULL ||
	    calendar_if_match(ex, ev) < 0 || (body = calendar_body(ex)) == NULL)
		return;
	if (replace) {
		static const char *const kept[] = {"created", "iCalUID", "conferenceData", "hangoutLink"};

		res = events_from_body(body, &err);
		for (size_t i = 0; res != NULL && i < sizeof(kept) / sizeof(*kept); i++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev->res, kept[i]);

			if (v != NULL)
				cJSON_AddItemToObject(res, kept[i], cJSON_Duplicate(v, 1));
		}
		rc = res != NULL ? 0 : -1;
	} else {
		res = cJSON_Duplicate(ev->res, 1);
		rc = events_patch(res, body, &err);
	}
	if (rc == 0)
		rc = events_times(res, store_timezone(acct), &start, &end, &err);
	/* Without conferenceDataVersion=1 Google drops conference changes silently. */
	if (rc == 0 && w.conference_version == 1)
		rc = events_conference(res, body, replace, &err);
	cJSON_Delete(body);
	if (rc < 0) {
		cJSON_Delete(res);
		exchange_api_error(ex, &err);
		return;
	}
	if (events_significant(ev->res, res))
		ev->sequence++;
	cJSON_Delete(ev->res);
	ev->res = res;
	ev->start_s = start;
	ev->end_s = end;
	calendar_commit(ex, ev, replace ? "update" : "patch", &w);
}

static void calendar_patch(struct exchange *ex)
{
	calendar_modify(ex, false);
}

static void calendar_update(struct exchange *ex)
{
	calendar_modify(ex, true);
}

static void calendar_delete(struct exchange *ex)
{
	struct account *acct = calendar_account(ex, calendar_write_scopes);
	struct calendar_write w;
	struct cal_event *ev;
	const cJSON *status;
	int64_t now;

	if (acct == NULL || calendar_write_params(ex, &w) < 0 || (ev = calendar_find(ex, acct)) == NULL ||
	    calendar_if_match(ex, ev) < 0)
		return;
	status = cJSON_GetObjectItemCaseSensitive(ev->res, "status");
	if (cJSON_IsString(status) && strcmp(status->valuestring, "cancelled") == 0) {
		calendar_error(ex, 410, "global", "deleted", "Resource has been deleted");
		return;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(ev->res, "status");
	cJSON_AddStringToObject(ev->res, "status", "cancelled");
	ev->sequence++;
	now = util_now_ms();
	events_stamp(ev, now);
	calendar_record(ev, "delete", &w, now);
	exchange_reply(ex, 204, NULL, NULL, 0);
}

/* privateExtendedProperty / sharedExtendedProperty: every name=value must hold. */
static bool calendar_props_match(const struct cal_event *ev, const struct form *q, const char *param, const char *part)
{
	const cJSON *props =
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev->res, "extendedProperties"), part);
	const char *pv;

	for (size_t k = 0; (pv = form_get_nth(q, param, k)) != NULL; k++) {
		const char *eq = strchr(pv, '=');
		char *name = xstrndup(pv, (size_t)(eq - pv));
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(props, name);

		free(name);
		if (!cJSON_IsString(v) || strcmp(v->valuestring, eq + 1) != 0)
			return false;
	}
	return true;
}

static bool calendar_props_valid(const struct form *q, const char *param)
{
	const char *v;

	for (size_t k = 0; (v = form_get_nth(q, param, k)) != NULL; k++) {
		if (strchr(v, '=') == NULL || v[0] == '=')
			return false;
	}
	return true;
}

static int calendar_by_start(const void *a, const void *b)
{
	const struct cal_event *x = *(struct cal_event *const *)a, *y = *(struct cal_event *const *)b;

	if (x->start_s != y->start_s)
		return x->start_s < y->start_s ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int calendar_by_updated(const void *a, const void *b)
{
	const struct cal_event *x = *(struct cal_event *const *)a, *y = *(struct cal_event *const *)b;

	if (x->updated_ms != y->updated_ms)
		return x->updated_ms < y->updated_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int calendar_list_params(struct exchange *ex, long *max, int64_t *tmin, int64_t *tmax, int64_t *umin,
                                long *offset)
{
	const struct form *q = ex->query;
	const char *v;

	*max = 250;
	*tmin = INT64_MIN;
	*tmax = INT64_MAX;
	*umin = INT64_MIN;
	*offset = 0;
	if ((v = form_get(q, "maxResults")) != NULL) {
		if (util_parse_long(v, 1, LONG_MAX, max) < 0) {
			calendar_invalid_param(ex, "maxResults", v, "Values must be within the range: [1, 2500]");
			return -1;
		}
		if (*max > 2500)
			*max = 2500;
	}
	if (((v = form_get(q, "timeMin")) != NULL && util_parse_instant(v, tmin) < 0) ||
	    ((v = form_get(q, "timeMax")) != NULL && util_parse_instant(v, tmax) < 0) ||
	    ((v = form_get(q, "updatedMin")) != NULL && util_parse_instant(v, umin) < 0)) {
		calendar_error(ex, 400, "global", "badRequest", "Bad Request");
		return -1;
	}
	if (!calendar_props_valid(q, "privateExtendedProperty") || !calendar_props_valid(q, "sharedExtendedProperty")) {
		calendar_error(ex, 400, "global", "badRequest", "Bad Request");
		return -1;
	}
	if ((v = form_get(q, "orderBy")) != NULL) {
		const char *single = form_get(q, "singleEvents");

		if (strcmp(v, "startTime") != 0 && strcmp(v, "updated") != 0) {
			calendar_invalid_param(
			    ex, "orderBy", v,
			    "Values must match the following regular expression: '(startTime|updated)'");
			return -1;
		}
		if (strcmp(v, "startTime") == 0 && (single == NULL || strcmp(single, "true") != 0)) {
			calendar_error(ex, 400, "global", "badRequest",
			               "The requested ordering is not available for the particular query.");
			return -1;
		}
	}
	if ((v = form_get(q, "pageToken")) != NULL &&
	    (v[0] != 'p' || util_parse_long(v + 1, 0, LONG_MAX, offset) < 0)) {
		calendar_invalid_param(ex, "pageToken", v, "Invalid page token.");
		return -1;
	}
	return 0;
}

static void calendar_list(struct exchange *ex)
{
	struct account *acct = calendar_account(ex, calendar_read_scopes);
	const struct form *q;
	const char *order, *show, *uid;
	bool deleted;
	long max, offset;
	int64_t tmin, tmax, umin;
	struct cal_event **hits;
	size_t n = 0;
	cJSON *o, *items;
	char when[32], etag[48];

	if (acct == NULL || calendar_list_params(ex, &max, &tmin, &tmax, &umin, &offset) < 0)
		return;
	q = ex->query;
	if (form_get(q, "syncToken") != NULL) {
		/* No incremental sync here: tell the client to do a full one, as Google does for old tokens. */
		calendar_error(ex, 410, "calendar", "fullSyncRequired",
		               "Sync token is no longer valid, a full sync is required.");
		return;
	}
	order = form_get(q, "orderBy");
	show = form_get(q, "showDeleted");
	deleted = show != NULL && strcmp(show, "true") == 0;
	uid = form_get(q, "iCalUID");
	hits = xreallocarray(NULL, acct->nevents + 1, sizeof(*hits));
	for (size_t i = 0; i < acct->nevents; i++) {
		struct cal_event *ev = acct->events[i];
		const cJSON *status = cJSON_GetObjectItemCaseSensitive(ev->res, "status");
		const cJSON *ical = cJSON_GetObjectItemCaseSensitive(ev->res, "iCalUID");

		if (!deleted && strcmp(status->valuestring, "cancelled") == 0)
			continue;
		/* timeMin bounds the end and timeMax the start, both exclusive. */
		if (ev->end_s <= tmin || ev->start_s >= tmax || (umin != INT64_MIN && ev->updated_ms < umin * 1000))
			continue;
		if (uid != NULL && strcmp(ical->valuestring, uid) != 0)
			continue;
		if (!calendar_props_match(ev, q, "privateExtendedProperty", "private") ||
		    !calendar_props_match(ev, q, "sharedExtendedProperty", "shared"))
			continue;
		hits[n++] = ev;
	}
	if (order != NULL)
		qsort(hits, n, sizeof(*hits),
		      strcmp(order, "startTime") == 0 ? calendar_by_start : calendar_by_updated);
	o = cJSON_CreateObject();
	util_format_time(acct->updated_ms, when, sizeof(when));
	snprintf(etag, sizeof(etag), "\"%lld\"", (long long)acct->updated_ms * 1000);
	cJSON_AddStringToObject(o, "kind", "calendar#events");
	cJSON_AddStringToObject(o, "etag", etag);
	cJSON_AddStringToObject(o, "summary", acct->email);
	cJSON_AddStringToObject(o, "description", "");
	cJSON_AddStringToObject(o, "updated", when);
	cJSON_AddStringToObject(o, "timeZone", store_timezone(acct));
	cJSON_AddStringToObject(o, "accessRole", "owner");
	cJSON_AddArrayToObject(o, "defaultReminders");
	if ((size_t)offset + (size_t)max < n) {
		char token[32];

		snprintf(token, sizeof(token), "p%ld", offset + max);
		cJSON_AddStringToObject(o, "nextPageToken", token);
	}
	items = cJSON_AddArrayToObject(o, "items");
	for (size_t i = (size_t)offset; i < n && i < (size_t)offset + (size_t)max; i++)
		cJSON_AddItemToArray(items, cJSON_Duplicate(hits[i]->res, 1));
	free(hits);
	exchange_reply_json(ex, 200, o);
}

static void calendar_add_common(cJSON *o, const struct account *acct, const char *kind)
{
	char etag[48];

	snprintf(etag, sizeof(etag), "\"%lld\"", (long long)acct->updated_ms * 1000);
	cJSON_AddStringToObject(o, "kind", kind);
	cJSON_AddStringToObject(o, "etag", etag);
	cJSON_AddStringToObject(o, "id", acct->email);
	cJSON_AddStringToObject(o, "summary", acct->email);
	cJSON_AddStringToObject(o, "timeZone", store_timezone(acct));
}

static void calendar_meet_only(cJSON *o)
{
	cJSON *types = cJSON_AddArrayToObject(cJSON_AddObjectToObject(o, "conferenceProperties"),
	                                      "allowedConferenceSolutionTypes");

	cJSON_AddItemToArray(types, cJSON_CreateString("hangoutsMeet"));
}

static void calendar_calendars_get(struct exchange *ex)
{
	struct account *acct = calendar_account(ex, calendar_calendars_scopes);
	cJSON *o;

	if (acct == NULL)
		return;
	o = cJSON_CreateObject();
	calendar_add_common(o, acct, "calendar#calendar");
	calendar_meet_only(o);
	exchange_reply_json(ex, 200, o);
}

static void calendar_list_entry(struct exchange *ex)
{
	struct account *acct = calendar_account(ex, calendar_list_scopes);
	cJSON *o;

	if (acct == NULL)
		return;
	o = cJSON_CreateObject();
	calendar_add_common(o, acct, "calendar#calendarListEntry");
	cJSON_AddStringToObject(o, "colorId", "14");
	cJSON_AddStringToObject(o, "backgroundColor", "#9fe1e7");
	cJSON_AddStringToObject(o, "foregroundColor", "#000000");
	cJSON_AddBoolToObject(o, "selected", 1);
	cJSON_AddStringToObject(o, "accessRole", "owner");
	cJSON_AddArrayToObject(o, "defaultReminders");
	calendar_meet_only(o);
	cJSON_AddBoolToObject(o, "primary", 1);
	exchange_reply_json(ex, 200, o);
}

static void calendar_settings_timezone(struct exchange *ex)
{
	const struct access *a = oauth_authenticate(ex, calendar_settings_scopes);
	const struct account *acct;
	cJSON *o;
	char etag[48];

	if (a == NULL)
		return;
	acct = store_account(a->email);
	snprintf(etag, sizeof(etag), "\"%lld\"", (long long)acct->updated_ms * 1000);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "kind", "calendar#setting");
	cJSON_AddStringToObject(o, "etag", etag);
	cJSON_AddStringToObject(o, "id", "timezone");
	cJSON_AddStringToObject(o, "value", store_timezone(acct));
	exchange_reply_json(ex, 200, o);
}

/* Split the path after /calendar/v3/ into at most 5 decoded segments; returns how many (6: too many). */
static size_t calendar_split(const char *path, char *seg[5])
{
	size_t n = 0;

	while (*path != '\0') {
		size_t len = strcspn(path, "/");
		char *raw;

		if (n == 5) {
			n++;
			break;
		}
		raw = xstrndup(path, len);
		seg[n++] = evhttp_uridecode(raw, 0, NULL);
		free(raw);
		path += len;
		if (*path == '/')
			path++;
	}
	return n;
}

struct calendar_route {
	const char *shape[5]; /* literal segments; "*" is a parameter */
	enum evhttp_cmd_type method;
	const char *endpoint;
	void (*handler)(struct exchange *ex);
};

static const struct calendar_route calendar_routes[] = {
    {{"calendars", "*", "events"}, EVHTTP_REQ_POST, "events.insert", calendar_insert},
    {{"calendars", "*", "events"}, EVHTTP_REQ_GET, "events.list", calendar_list},
    {{"calendars", "*", "events", "*"}, EVHTTP_REQ_GET, "events.get", calendar_get},
    {{"calendars", "*", "events", "*"}, EVHTTP_REQ_PATCH, "events.patch", calendar_patch},
    {{"calendars", "*", "events", "*"}, EVHTTP_REQ_PUT, "events.update", calendar_update},
    {{"calendars", "*", "events", "*"}, EVHTTP_REQ_DELETE, "events.delete", calendar_delete},
    {{"calendars", "*"}, EVHTTP_REQ_GET, "calendars.get", calendar_calendars_get},
    {{"users", "me", "calendarList", "*"}, EVHTTP_REQ_GET, "calendarList.get", calendar_list_entry},
    {{"users", "me", "settings", "timezone"}, EVHTTP_REQ_GET, "settings.get", calendar_settings_timezone},
    {{"freeBusy"}, EVHTTP_REQ_POST, "freebusy.query", freebusy_query},
};

bool calendar_route(struct exchange *ex)
{
	static const char prefix[] = "/calendar/v3/";
	char *seg[5] = {0};
	size_t n;

	if (strncmp(ex->path, prefix, sizeof(prefix) - 1) != 0)
		return false;
	ex->family = FAMILY_API;
	ex->endpoint = "calendar.unknown";
	ex->handler = calendar_not_found;
	n = calendar_split(ex->path + sizeof(prefix) - 1, seg);
	for (size_t r = 0; n <= 5 && r < sizeof(calendar_routes) / sizeof(*calendar_routes); r++) {
		const struct calendar_route *cr = &calendar_routes[r];
		size_t k, nparam = 0;

		if (cr->method != ex->method)
			continue;
		for (k = 0; k < n && cr->shape[k] != NULL; k++) {
			if (strcmp(cr->shape[k], "*") != 0 && strcmp(cr->shape[k], seg[k]) != 0)
				break;
			if (strcmp(cr->shape[k], "*") == 0 && seg[k][0] == '\0')
				break;
		}
		if (k != n || (k < 5 && cr->shape[k] != NULL))
			continue;
		for (k = 0; k < n; k++) {
			if (strcmp(cr->shape[k], "*") == 0 && nparam < 2) {
				ex->seg[nparam++] = seg[k];
				seg[k] = NULL;
			}
		}
		ex->endpoint = cr->endpoint;
		ex->handler = cr->handler;
		break;
	}
	for (size_t k = 0; k < 5; k++)
		free(seg[k]);
	return true;
}
