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
 *   POST   calendars/{cal}/events/watch    events.watch (watch.c)
 *   POST   channels/stop                   channels.stop (watch.c)
 *   POST   freeBusy                        freebusy.query (freebusy.c)
 *
 * Each request is authenticated first (401/403 as Google), then its
 * calendar resolved: "primary" or the account's own email; any other
 * calendar is 404, since an account here owns exactly one. Every write
 * records its sendUpdates and conferenceDataVersion on the event for the
 * admin view, so tests can assert a client's notification policy; and
 * every write, the API's or the admin UI knobs', bumps the calendar's change
 * counter (sync tokens: a full events.list ends in a nextSyncToken, a
 * syncToken list answers what changed since) and pushes to its channels.
 */
#include "standin.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "datetime.h"
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

static bool calendar_cancelled(const struct cal_event *ev);

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
	/* Every write is a change for sync tokens and a push to the calendar's channels. */
	ev->change_seq = ++ev->account->change_seq;
	watch_notify(ev->account);
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

/* One EventDateTime moved by shift_s (whole days for an all-day one); NULL with *err. */
static cJSON *calendar_shift_time(const cJSON *edt, long shift_s, const char **err)
{
	const cJSON *date = cJSON_GetObjectItemCaseSensitive(edt, "date");
	const cJSON *dtv = cJSON_GetObjectItemCaseSensitive(edt, "dateTime");
	cJSON *out = cJSON_Duplicate(edt, 1);
	struct datetime dt;
	char buf[40];

	if (cJSON_IsString(date)) {
		if (shift_s % 86400 != 0) {
			*err = "an all-day event moves by whole days (shift_s a multiple of 86400)";
			cJSON_Delete(out);
			return NULL;
		}
		snprintf(buf, sizeof(buf), "%sT00:00:00Z", date->valuestring);
		if (datetime_parse(buf, strlen(buf), &dt) < 0) {
			*err = "the event's date cannot be read";
			cJSON_Delete(out);
			return NULL;
		}
		datetime_format(dt.epoch_s + shift_s, 0, buf, sizeof(buf));
		buf[10] = '\0';
		cJSON_ReplaceItemInObjectCaseSensitive(out, "date", cJSON_CreateString(buf));
		return out;
	}
	if (!cJSON_IsString(dtv) || datetime_parse(dtv->valuestring, strlen(dtv->valuestring), &dt) < 0) {
		*err = "the event's dateTime cannot be read";
		cJSON_Delete(out);
		return NULL;
	}
	if (!dt.has_offset) {
		const cJSON *zone = cJSON_GetObjectItemCaseSensitive(edt, "timeZone");

		if (!cJSON_IsString(zone) || datetime_resolve(&dt, zone->valuestring) < 0) {
			*err = "the event's dateTime has no zone";
			cJSON_Delete(out);
			return NULL;
		}
	}
	/* The wall clock keeps the offset it was written with (Google rewrites it in the event's zone). */
	datetime_format(dt.epoch_s + shift_s, dt.offset_s, buf, sizeof(buf));
	cJSON_ReplaceItemInObjectCaseSensitive(out, "dateTime", cJSON_CreateString(buf));
	return out;
}

/* The UI writes no notification choice and no conference version; history gets op. */
static void calendar_ui_commit(struct cal_event *ev, const char *op)
{
	struct calendar_write w = {.send_updates = NULL, .conference_version = -1};
	int64_t now = util_now_ms();

	events_stamp(ev, now);
	calendar_record(ev, op, &w, now);
}

int calendar_ui_move(struct cal_event *ev, const cJSON *start, const cJSON *end, long shift_s, const char **err)
{
	cJSON *res = cJSON_Duplicate(ev->res, 1);
	cJSON *ns, *ne;
	struct api_error aerr;
	int64_t s, e;

	if (calendar_cancelled(ev)) {
		cJSON_Delete(res);
		*err = "the event is deleted";
		return -1;
	}
	if (start != NULL || end != NULL) {
		if (!cJSON_IsObject(start) || !cJSON_IsObject(end)) {
			cJSON_Delete(res);
			*err = "start and end must both be EventDateTime objects";
			return -1;
		}
		ns = cJSON_Duplicate(start, 1);
		ne = cJSON_Duplicate(end, 1);
	} else {
		ns = calendar_shift_time(cJSON_GetObjectItemCaseSensitive(ev->res, "start"), shift_s, err);
		ne = ns == NULL ? NULL
		                : calendar_shift_time(cJSON_GetObjectItemCaseSensitive(ev->res, "end"), shift_s, err);
		if (ns == NULL || ne == NULL) {
			cJSON_Delete(ns);
			cJSON_Delete(res);
			return -1;
		}
	}
	cJSON_ReplaceItemInObjectCaseSensitive(res, "start", ns);
	cJSON_ReplaceItemInObjectCaseSensitive(res, "end", ne);
	if (events_times(res, store_timezone(ev->account), &s, &e, &aerr) < 0) {
		cJSON_Delete(res);
		*err = aerr.message;
		return -1;
	}
	if (events_significant(ev->res, res))
		ev->sequence++;
	cJSON_Delete(ev->res);
	ev->res = res;
	ev->start_s = s;
	ev->end_s = e;
	calendar_ui_commit(ev, "ui.move");
	return 0;
}

int calendar_ui_delete(struct cal_event *ev, const char **err)
{
	if (calendar_cancelled(ev)) {
		*err = "the event is already deleted";
		return -1;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(ev->res, "status");
	cJSON_AddStringToObject(ev->res, "status", "cancelled");
	ev->sequence++;
	calendar_ui_commit(ev, "ui.delete");
	return 0;
}

int calendar_ui_respond(struct cal_event *ev, const char *attendee, const char *response, const char **err)
{
	cJSON *a;

	if (strcmp(response, "accepted") != 0 && strcmp(response, "declined") != 0 &&
	    strcmp(response, "tentative") != 0 && strcmp(response, "needsAction") != 0) {
		*err = "response must be accepted, declined, tentative or needsAction";
		return -1;
	}
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(ev->res, "attendees")) {
		const cJSON *email = cJSON_GetObjectItemCaseSensitive(a, "email");

		if (!cJSON_IsString(email) || strcasecmp(email->valuestring, attendee) != 0)
			continue;
		/* An answer changes updated and etag, never sequence. */
		if (cJSON_GetObjectItemCaseSensitive(a, "responseStatus") != NULL)
			cJSON_ReplaceItemInObjectCaseSensitive(a, "responseStatus", cJSON_CreateString(response));
		else
			cJSON_AddStringToObject(a, "responseStatus", response);
		calendar_ui_commit(ev, "attendee.respond");
		return 0;
	}
	*err = "the event has no attendee with that email";
	return -1;
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

/* The filters Google refuses next to a syncToken (and which make a list give none). */
static const char *const calendar_sync_filters[] = {
    "iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty", "timeMin", "timeMax", "updatedMin",
};

/*
 * Sync tokens are "CP" + the calendar's sync epoch (8 hex digits) + its change
 * counter (16): opaque to clients, and a new epoch (the admin knob, a reset)
 * makes every older token fail.
 */
static void calendar_sync_token(const struct account *acct, uint64_t seq, char *buf, size_t size)
{
	snprintf(buf, size, "CP%08x%016llx", (unsigned)acct->sync_epoch, (unsigned long long)seq);
}

/* The change counter a token stands for; -1 when it is not this calendar's live token. */
static int calendar_parse_sync_token(const struct account *acct, const char *tok, uint64_t *seq)
{
	unsigned epoch;
	unsigned long long v;
	char tail;

	if (strlen(tok) != 26 || strncmp(tok, "CP", 2) != 0 || strspn(tok + 2, "0123456789abcdef") != 24 ||
	    sscanf(tok + 2, "%8x%16llx%c", &epoch, &v, &tail) != 2)
		return -1;
	if (epoch != acct->sync_epoch || v > acct->change_seq)
		return -1;
	*seq = v;
	return 0;
}

void calendar_invalidate_sync_tokens(struct account *acct)
{
	uint32_t old = acct->sync_epoch;

	while (acct->sync_epoch == old)
		acct->sync_epoch = randombytes_random();
}

/*
 * Page tokens: "p<n>" (a position: the index in the calendar's insertion order
 * to go on from, or with orderBy the offset in the sorted result) plus, on a
 * list that ends in a sync token, "s<seq>": the change counter when its first
 * page was served, which the last page's nextSyncToken stands for. "c<seq>"
 * pages an incremental list: the changes after seq, in the order they happened,
 * so a change made between two pages is never skipped.
 */
struct calendar_page {
	char kind; /* 'p', 'c', or 0 for the first page */
	long pos;
	uint64_t seq;
	bool has_seq;
};

static int calendar_parse_page(const char *v, struct calendar_page *pg)
{
	char *end;
	unsigned long long seq;

	if (v[0] != 'p' && v[0] != 'c')
		return -1;
	pg->kind = v[0];
	if (v[0] == 'c') {
		if (v[1] < '0' || v[1] > '9')
			return -1;
		seq = strtoull(v + 1, &end, 10);
		if (*end != '\0')
			return -1;
		pg->seq = seq;
		pg->has_seq = true;
		return 0;
	}
	if (v[1] < '0' || v[1] > '9')
		return -1;
	pg->pos = strtol(v + 1, &end, 10);
	if (pg->pos < 0)
		return -1;
	if (*end == 's') {
		if (end[1] < '0' || end[1] > '9')
			return -1;
		seq = strtoull(end + 1, &end, 10);
		pg->seq = seq;
		pg->has_seq = true;
	}
	return *end == '\0' ? 0 : -1;
}

static int calendar_list_params(struct exchange *ex, long *max, int64_t *tmin, int64_t *tmax, int64_t *umin,
                                struct calendar_page *pg)
{
	const struct form *q = ex->query;
	const char *v;

	*max = 250;
	*tmin = INT64_MIN;
	*tmax = INT64_MAX;
	*umin = INT64_MIN;
	*pg = (struct calendar_page){0};
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
	if ((v = form_get(q, "pageToken")) != NULL && calendar_parse_page(v, pg) < 0) {
		calendar_invalid_param(ex, "pageToken", v, "Invalid page token.");
		return -1;
	}
	return 0;
}

/* The Events envelope (kind, etag, summary, ...) without items. */
static cJSON *calendar_events_envelope(const struct account *acct)
{
	cJSON *o = cJSON_CreateObject();
	char when[32], etag[48];

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
	return o;
}

static bool calendar_cancelled(const struct cal_event *ev)
{
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(ev->res, "status");

	return cJSON_IsString(status) && strcmp(status->valuestring, "cancelled") == 0;
}

/* A deleted event as an incremental sync shows it: only what identifies it. */
static cJSON *calendar_deleted_item(const struct cal_event *ev)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddItemToObject(o, "kind", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(ev->res, "kind"), 1));
	cJSON_AddItemToObject(o, "etag", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(ev->res, "etag"), 1));
	cJSON_AddStringToObject(o, "id", ev->id);
	cJSON_AddStringToObject(o, "status", "cancelled");
	return o;
}

static int calendar_by_change(const void *a, const void *b)
{
	const struct cal_event *x = *(struct cal_event *const *)a, *y = *(struct cal_event *const *)b;

	return x->change_seq < y->change_seq ? -1 : x->change_seq > y->change_seq;
}

/* events.list?syncToken=: every event changed since the token, deleted ones included. */
static void calendar_list_incremental(struct exchange *ex, struct account *acct, const char *tok, long max,
                                      const struct calendar_page *pg)
{
	struct cal_event **hits;
	uint64_t from;
	size_t n = 0;
	cJSON *o, *items;
	char next[64];

	for (size_t i = 0; i < sizeof(calendar_sync_filters) / sizeof(*calendar_sync_filters); i++) {
		if (form_get(ex->query, calendar_sync_filters[i]) != NULL) {
			struct api_error e = {.status = 400,
			                      .domain = "global",
			                      .reason = "invalid",
			                      .location_type = "parameter",
			                      .location = calendar_sync_filters[i]};

			snprintf(calendar_msg, sizeof(calendar_msg), "Sync token cannot be used with the parameter %s.",
			         calendar_sync_filters[i]);
			e.message = calendar_msg;
			exchange_api_error(ex, &e);
			return;
		}
	}
	if (calendar_parse_sync_token(acct, tok, &from) < 0) {
		calendar_error(ex, 410, "calendar", "fullSyncRequired",
		               "Sync token is no longer valid, a full sync is required.");
		return;
	}
	if (pg->kind == 'p') {
		calendar_invalid_param(ex, "pageToken", form_get(ex->query, "pageToken"), "Invalid page token.");
		return;
	}
	if (pg->kind == 'c') {
		if (pg->seq < from || pg->seq > acct->change_seq) {
			calendar_invalid_param(ex, "pageToken", form_get(ex->query, "pageToken"),
			                       "Invalid page token.");
			return;
		}
		from = pg->seq;
	}
	hits = xreallocarray(NULL, acct->nevents + 1, sizeof(*hits));
	for (size_t i = 0; i < acct->nevents; i++) {
		if (acct->events[i]->change_seq > from)
			hits[n++] = acct->events[i];
	}
	qsort(hits, n, sizeof(*hits), calendar_by_change);
	o = calendar_events_envelope(acct);
	if ((size_t)max < n) {
		snprintf(next, sizeof(next), "c%llu", (unsigned long long)hits[max - 1]->change_seq);
		cJSON_AddStringToObject(o, "nextPageToken", next);
	} else {
		calendar_sync_token(acct, acct->change_seq, next, sizeof(next));
		cJSON_AddStringToObject(o, "nextSyncToken", next);
	}
	items = cJSON_AddArrayToObject(o, "items");
	for (size_t i = 0; i < n && i < (size_t)max; i++)
		cJSON_AddItemToArray(items, calendar_cancelled(hits[i]) ? calendar_deleted_item(hits[i])
		                                                        : cJSON_Duplicate(hits[i]->res, 1));
	free(hits);
	exchange_reply_json(ex, 200, o);
}

static void calendar_list(struct exchange *ex)
{
	struct account *acct = calendar_account(ex, calendar_read_scopes);
	const struct form *q;
	const char *order, *show, *uid, *tok;
	bool deleted, syncable = true;
	long max;
	struct calendar_page pg;
	int64_t tmin, tmax, umin;
	uint64_t snapshot;
	struct cal_event **hits;
	size_t n = 0, start = 0;
	cJSON *o, *items;

	if (acct == NULL || calendar_list_params(ex, &max, &tmin, &tmax, &umin, &pg) < 0)
		return;
	q = ex->query;
	if ((tok = form_get(q, "syncToken")) != NULL) {
		calendar_list_incremental(ex, acct, tok, max, &pg);
		return;
	}
	if (pg.kind == 'c') {
		calendar_invalid_param(ex, "pageToken", form_get(q, "pageToken"), "Invalid page token.");
		return;
	}
	for (size_t i = 0; i < sizeof(calendar_sync_filters) / sizeof(*calendar_sync_filters); i++)
		syncable = syncable && form_get(q, calendar_sync_filters[i]) == NULL;
	snapshot = pg.has_seq ? pg.seq : acct->change_seq;
	order = form_get(q, "orderBy");
	show = form_get(q, "showDeleted");
	deleted = show != NULL && strcmp(show, "true") == 0;
	uid = form_get(q, "iCalUID");
	/* Without orderBy the page token is a position in insertion order, which never shifts. */
	if (order == NULL)
		start = (size_t)pg.pos < acct->nevents ? (size_t)pg.pos : acct->nevents;
	hits = xreallocarray(NULL, acct->nevents + 1, sizeof(*hits));
	for (size_t i = start; i < acct->nevents; i++) {
		struct cal_event *ev = acct->events[i];
		const cJSON *ical = cJSON_GetObjectItemCaseSensitive(ev->res, "iCalUID");

		if (order == NULL && n == (size_t)max + 1)
			break;
		if (!deleted && calendar_cancelled(ev))
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
	o = calendar_events_envelope(acct);
	items = cJSON_AddArrayToObject(o, "items");
	if (order != NULL) {
		size_t off = (size_t)pg.pos;

		qsort(hits, n, sizeof(*hits),
		      strcmp(order, "startTime") == 0 ? calendar_by_start : calendar_by_updated);
		for (size_t i = off; i < n && i < off + (size_t)max; i++)
			cJSON_AddItemToArray(items, cJSON_Duplicate(hits[i]->res, 1));
		if (off + (size_t)max < n) {
			char token[48];

			snprintf(token, sizeof(token), "p%zu", off + (size_t)max);
			cJSON_AddStringToObject(o, "nextPageToken", token);
		}
	} else {
		for (size_t i = 0; i < n && i < (size_t)max; i++)
			cJSON_AddItemToArray(items, cJSON_Duplicate(hits[i]->res, 1));
		if (n > (size_t)max) {
			/* The page ends just before the first hit it could not take. */
			char token[64];
			size_t resume = 0;

			for (size_t i = start; i < acct->nevents; i++) {
				if (acct->events[i] == hits[max]) {
					resume = i;
					break;
				}
			}
			if (syncable)
				snprintf(token, sizeof(token), "p%zus%llu", resume, (unsigned long long)snapshot);
			else
				snprintf(token, sizeof(token), "p%zu", resume);
			cJSON_AddStringToObject(o, "nextPageToken", token);
		}
	}
	if (syncable && cJSON_GetObjectItemCaseSensitive(o, "nextPageToken") == NULL) {
		char token[64];

		calendar_sync_token(acct, snapshot, token, sizeof(token));
		cJSON_AddStringToObject(o, "nextSyncToken", token);
	}
	/* Google puts items last; the page and sync tokens come before them. */
	cJSON_AddItemToObject(o, "items", cJSON_DetachItemViaPointer(o, items));
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

static void calendar_watch(struct exchange *ex)
{
	struct account *acct = calendar_account(ex, calendar_read_scopes);

	if (acct != NULL)
		watch_events(ex, acct);
}

static const struct calendar_route calendar_routes[] = {
    {{"calendars", "*", "events", "watch"}, EVHTTP_REQ_POST, "events.watch", calendar_watch},
    {{"channels", "stop"}, EVHTTP_REQ_POST, "channels.stop", watch_stop},
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
