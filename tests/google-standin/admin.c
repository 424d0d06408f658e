/*
 * admin: the /_standin/ API that tests and the local stack use to steer
 * the stand-in and to look inside it. JSON in, JSON out; errors are
 * {"error": "what is wrong"} with 400 (or 404 for an unknown endpoint).
 * These requests are never faulted and never journaled, so they do not
 * disturb what a test asserts about a client's traffic.
 *
 *   GET/POST/DELETE /_standin/faults   fault injection (see faults.c)
 *   GET/POST        /_standin/config   settings (see config.c)
 *   GET/POST        /_standin/accounts per-account calendar zone and name
 *   POST /_standin/expire-tokens       {"email"}: that account's access tokens expire now
 *   POST /_standin/revoke-grants       {"email"}: the user removes every app's access
 *   GET  /_standin/events?email=       stored events with their write history
 *   POST /_standin/events              {"email", "event"}: the user adds an event in Google's UI
 *   POST /_standin/events/move         {"email", "id", "start"+"end" | "shift_s"}: the user moves it in the UI
 *   POST /_standin/events/delete       {"email", "id"}: the user deletes it in the UI
 *   POST /_standin/events/respond      {"email", "id", "attendee", "response"}: an attendee answers
 *                                      (these three also take HTML form posts, and redirect back
 *                                      to the HTML view of GET /_standin/events)
 *   GET/POST/DELETE /_standin/pushes   channels, the push log, drop and lifetime knobs (watch.c)
 *   POST /_standin/invalidate-sync-tokens {"email"}: that calendar's sync tokens answer 410
 *   GET/POST/DELETE /_standin/freebusy per-calendar freeBusy errors, largest window (freebusy.c)
 *   GET  /_standin/stats               counts per endpoint and status, refreshes, grants
 *   GET  /_standin/requests            the last 1000 requests
 *   POST /_standin/reset               forget everything, settings back to the flags
 */
#include "standin.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "tz.h"
#include "xmalloc.h"

static struct config admin_startup;

void admin_init(const struct config *startup)
{
	config_copy(&admin_startup, startup);
}

void admin_free(void)
{
	config_clear(&admin_startup);
}

static void admin_error(struct exchange *ex, int status, const char *message)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "error", message);
	exchange_reply_json(ex, status, o);
}

static void admin_ok(struct exchange *ex)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "ok", 1);
	exchange_reply_json(ex, 200, o);
}

/* The body as JSON (empty: {}); NULL once answered. The caller deletes it. */
static cJSON *admin_body(struct exchange *ex)
{
	size_t len;
	char *s = exchange_body(ex, &len);
	cJSON *j = len == 0 ? cJSON_CreateObject() : cJSON_ParseWithLength(s, len);

	free(s);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		admin_error(ex, 400, "body must be a JSON object");
		return NULL;
	}
	return j;
}

/* The optional "email" of a body: NULL for every account, or -1 once answered. */
static int admin_email(struct exchange *ex, const cJSON *body, const char **email)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "email");

	*email = NULL;
	if (v == NULL)
		return 0;
	if (!cJSON_IsString(v) || !util_valid_email(v->valuestring)) {
		admin_error(ex, 400, "email must be an email address");
		return -1;
	}
	*email = v->valuestring;
	return 0;
}

static void admin_faults(struct exchange *ex)
{
	const char *err;
	cJSON *body;

	if (ex->method == EVHTTP_REQ_GET) {
		exchange_reply_json(ex, 200, faults_to_json());
	} else if (ex->method == EVHTTP_REQ_DELETE) {
		faults_clear();
		log_info("faults cleared");
		admin_ok(ex);
	} else if ((body = admin_body(ex)) != NULL) {
		if (faults_set_json(body, &err) < 0)
			admin_error(ex, 400, err);
		else
			exchange_reply_json(ex, 200, faults_to_json());
		cJSON_Delete(body);
	}
}

static void admin_config(struct exchange *ex)
{
	const char *err;
	cJSON *body;

	if (ex->method == EVHTTP_REQ_GET) {
		exchange_reply_json(ex, 200, config_to_json(&config));
	} else if ((body = admin_body(ex)) != NULL) {
		if (config_apply_json(&config, body, &err) < 0) {
			admin_error(ex, 400, err);
		} else {
			log_info("config changed", LOG_BOOL("auto_approve", config.auto_approve),
			         LOG_STR("timezone", config.timezone), LOG_EMAIL("email", config.email));
			exchange_reply_json(ex, 200, config_to_json(&config));
		}
		cJSON_Delete(body);
	}
}

static cJSON *admin_account_json(const struct account *a)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "email", a->email);
	cJSON_AddStringToObject(o, "id", a->id);
	cJSON_AddStringToObject(o, "name", a->name);
	cJSON_AddStringToObject(o, "timezone", store_timezone(a));
	cJSON_AddNumberToObject(o, "events", (double)a->nevents);
	return o;
}

static void admin_list_account(struct account *a, void *arg)
{
	cJSON_AddItemToArray(arg, admin_account_json(a));
}

static void admin_accounts(struct exchange *ex)
{
	const cJSON *tz, *name;
	const char *email;
	struct account *a;
	cJSON *body, *o;

	if (ex->method == EVHTTP_REQ_GET) {
		o = cJSON_CreateObject();
		store_each_account(admin_list_account, cJSON_AddArrayToObject(o, "accounts"));
		exchange_reply_json(ex, 200, o);
		return;
	}
	if ((body = admin_body(ex)) == NULL)
		return;
	tz = cJSON_GetObjectItemCaseSensitive(body, "timezone");
	name = cJSON_GetObjectItemCaseSensitive(body, "name");
	if (admin_email(ex, body, &email) < 0) {
		cJSON_Delete(body);
		return;
	}
	if (email == NULL) {
		admin_error(ex, 400, "email is required");
	} else if (tz != NULL && (!cJSON_IsString(tz) || !tz_valid(tz->valuestring))) {
		admin_error(ex, 400, "timezone must be an IANA zone name");
	} else if (name != NULL && (!cJSON_IsString(name) || name->valuestring[0] == '\0')) {
		admin_error(ex, 400, "name must be a non-empty string");
	} else {
		a = store_account(email);
		if (tz != NULL) {
			free(a->timezone);
			a->timezone = xstrdup(tz->valuestring);
		}
		if (name != NULL) {
			free(a->name);
			a->name = xstrdup(name->valuestring);
		}
		exchange_reply_json(ex, 200, admin_account_json(a));
	}
	cJSON_Delete(body);
}

struct admin_count {
	size_t (*fn)(const char *email);
	size_t n;
};

static void admin_count_one(struct account *a, void *arg)
{
	struct admin_count *c = arg;

	c->n += c->fn(a->email);
}

/* Apply fn to one account or (no email) to all; answer {key: count}. */
static void admin_per_account(struct exchange *ex, size_t (*fn)(const char *email), const char *key)
{
	struct admin_count c = {fn, 0};
	const char *email;
	cJSON *body, *o;

	if ((body = admin_body(ex)) == NULL)
		return;
	if (admin_email(ex, body, &email) < 0) {
		cJSON_Delete(body);
		return;
	}
	if (email != NULL) {
		char *lower = util_lower(email);

		c.n = fn(lower);
		free(lower);
	} else {
		store_each_account(admin_count_one, &c);
	}
	log_info(key, LOG_EMAIL("email", email), LOG_INT("count", (long long)c.n));
	cJSON_Delete(body);
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, key, (double)c.n);
	exchange_reply_json(ex, 200, o);
}

static void admin_expire(struct exchange *ex)
{
	admin_per_account(ex, grants_expire_email, "expired");
}

static void admin_revoke(struct exchange *ex)
{
	admin_per_account(ex, grants_revoke_email, "revoked");
}

/* One event as stored, with the history a test asserts a client's policy on. */
static cJSON *admin_event_json(const struct cal_event *ev)
{
	cJSON *o = cJSON_Duplicate(ev->res, 1);
	cJSON *meta = cJSON_AddObjectToObject(o, "_standin");
	cJSON *su = cJSON_AddArrayToObject(meta, "send_updates");
	cJSON *ops = cJSON_AddArrayToObject(meta, "ops");
	const cJSON *w, *last = NULL;

	cJSON_AddStringToObject(meta, "calendar", ev->account->email);
	cJSON_ArrayForEach(w, ev->writes) {
		cJSON_AddItemToArray(su, cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(w, "send_updates"), 1));
		cJSON_AddItemToArray(ops, cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(w, "op"), 1));
		last = w;
	}
	if (last != NULL)
		cJSON_AddItemToObject(
		    meta, "conference_data_version",
		    cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(last, "conference_data_version"), 1));
	else
		cJSON_AddNullToObject(meta, "conference_data_version");
	cJSON_AddNumberToObject(meta, "writes", cJSON_GetArraySize(ev->writes));
	cJSON_AddItemToObject(meta, "history",
	                      ev->writes != NULL ? cJSON_Duplicate(ev->writes, 1) : cJSON_CreateArray());
	return o;
}

static void admin_account_events(struct account *a, void *arg)
{
	for (size_t i = 0; i < a->nevents; i++)
		cJSON_AddItemToArray(arg, admin_event_json(a->events[i]));
}

/* POST: {"email", "event"}: the account's owner adds event in Google's UI (no client, no token). */
static void admin_ui_insert(struct exchange *ex)
{
	const cJSON *event;
	const char *email;
	struct api_error err;
	struct cal_event *ev;
	cJSON *body, *o;

	if ((body = admin_body(ex)) == NULL)
		return;
	event = cJSON_GetObjectItemCaseSensitive(body, "event");
	if (admin_email(ex, body, &email) < 0) {
		cJSON_Delete(body);
		return;
	}
	if (email == NULL) {
		admin_error(ex, 400, "email is required");
	} else if (!cJSON_IsObject(event)) {
		admin_error(ex, 400, "event must be an Event object (as for events.insert)");
	} else if ((ev = calendar_ui_insert(store_account(email), event, &err)) == NULL) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "error", err.message);
		cJSON_AddStringToObject(o, "reason", err.reason);
		cJSON_AddNumberToObject(o, "google_status", err.status);
		exchange_reply_json(ex, 400, o);
	} else {
		log_info("ui event added", LOG_EMAIL("email", email));
		exchange_reply_json(ex, 200, admin_event_json(ev));
	}
	cJSON_Delete(body);
}

struct admin_accounts {
	const struct account **list;
	size_t n, cap;
};

static void admin_collect(struct account *a, void *arg)
{
	struct admin_accounts *c = arg;

	if (c->n == c->cap) {
		c->cap = c->cap != 0 ? c->cap * 2 : 8;
		c->list = xreallocarray(c->list, c->cap, sizeof(*c->list));
	}
	c->list[c->n++] = a;
}

static int admin_by_email(const void *a, const void *b)
{
	return strcmp((*(const struct account *const *)a)->email, (*(const struct account *const *)b)->email);
}

/* Whether the client asked for HTML (a browser); JSON stays the default. */
static bool admin_wants_html(struct exchange *ex)
{
	const char *accept = exchange_header(ex, "Accept");

	return accept != NULL && strstr(accept, "text/html") != NULL;
}

static void admin_events_html(struct exchange *ex, const char *email)
{
	struct admin_accounts c = {0};
	char *html;

	if (email != NULL) {
		struct account *a = store_find_account(email);

		if (a != NULL)
			admin_collect(a, &c);
	} else {
		store_each_account(admin_collect, &c);
	}
	qsort(c.list, c.n, sizeof(*c.list), admin_by_email);
	html = pages_calendar(c.list, c.n);
	free(c.list);
	exchange_html(ex, 200, html);
	free(html);
}

static void admin_events(struct exchange *ex)
{
	const char *email = form_get(ex->query, "email");
	cJSON *o, *list;

	if (ex->method == EVHTTP_REQ_POST) {
		admin_ui_insert(ex);
		return;
	}
	if (admin_wants_html(ex)) {
		admin_events_html(ex, email);
		return;
	}
	o = cJSON_CreateObject();
	list = cJSON_AddArrayToObject(o, "events");

	if (email != NULL) {
		struct account *a = store_find_account(email);

		if (a != NULL)
			admin_account_events(a, list);
	} else {
		store_each_account(admin_account_events, list);
	}
	exchange_reply_json(ex, 200, o);
}

/*
 * The body of a UI knob: JSON, or an HTML form's fields (strings) when the
 * view's buttons post it; *form says which. NULL once answered.
 */
static cJSON *admin_input(struct exchange *ex, bool *form)
{
	const char *ct = exchange_header(ex, "Content-Type");
	static const char *const keys[] = {"email", "id", "shift_s", "attendee", "response"};
	struct form *f;
	size_t len;
	char *s;
	cJSON *o;

	*form = ct != NULL && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0;
	if (!*form)
		return admin_body(ex);
	s = exchange_body(ex, &len);
	f = form_parse(s, len);
	free(s);
	o = cJSON_CreateObject();
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
		const char *v = form_get(f, keys[i]);

		if (v != NULL)
			cJSON_AddStringToObject(o, keys[i], v);
	}
	form_free(f);
	return o;
}

/* The event a UI knob names ({"email", "id"}); NULL once answered. */
static struct cal_event *admin_ui_event(struct exchange *ex, const cJSON *body)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "id");
	const char *email;
	struct account *a;
	struct cal_event *ev;

	if (admin_email(ex, body, &email) < 0)
		return NULL;
	if (email == NULL || !cJSON_IsString(id)) {
		admin_error(ex, 400, "email and id are required");
		return NULL;
	}
	if ((a = store_find_account(email)) == NULL || (ev = store_get_event(a, id->valuestring)) == NULL) {
		admin_error(ex, 404, "no such event in that calendar");
		return NULL;
	}
	return ev;
}

/* After a UI knob: the form goes back to the calendar view, JSON gets the event. */
static void admin_ui_done(struct exchange *ex, bool form, const struct cal_event *ev)
{
	if (form) {
		evhttp_add_header(evhttp_request_get_output_headers(ex->req), "Location", "/_standin/events");
		exchange_reply(ex, 303, "text/html; charset=utf-8", NULL, 0);
	} else {
		exchange_reply_json(ex, 200, admin_event_json(ev));
	}
}

static void admin_ui_move(struct exchange *ex)
{
	const cJSON *start, *end, *shift;
	const char *err = NULL;
	struct cal_event *ev;
	long shift_s = 0;
	bool form;
	cJSON *body;

	if ((body = admin_input(ex, &form)) == NULL)
		return;
	if ((ev = admin_ui_event(ex, body)) == NULL) {
		cJSON_Delete(body);
		return;
	}
	start = cJSON_GetObjectItemCaseSensitive(body, "start");
	end = cJSON_GetObjectItemCaseSensitive(body, "end");
	shift = cJSON_GetObjectItemCaseSensitive(body, "shift_s");
	if (start == NULL && end == NULL) {
		if (cJSON_IsNumber(shift) && shift->valuedouble == (double)(long)shift->valuedouble &&
		    shift->valuedouble > -1e9 && shift->valuedouble < 1e9)
			shift_s = (long)shift->valuedouble;
		else if (!cJSON_IsString(shift) ||
		         util_parse_long(shift->valuestring[0] == '-' ? shift->valuestring + 1 : shift->valuestring, 0,
		                         999999999L, &shift_s) < 0)
			err = "give start and end (EventDateTime objects) or shift_s (seconds)";
		else if (shift->valuestring[0] == '-')
			shift_s = -shift_s;
	} else if (shift != NULL) {
		err = "give start and end, or shift_s, not both";
	}
	if (err != NULL || calendar_ui_move(ev, start, end, shift_s, &err) < 0) {
		admin_error(ex, 400, err);
	} else {
		log_info("ui event moved", LOG_EMAIL("email", ev->account->email), LOG_INT("shift_s", shift_s));
		admin_ui_done(ex, form, ev);
	}
	cJSON_Delete(body);
}

static void admin_ui_delete(struct exchange *ex)
{
	const char *err;
	struct cal_event *ev;
	bool form;
	cJSON *body;

	if ((body = admin_input(ex, &form)) == NULL)
		return;
	if ((ev = admin_ui_event(ex, body)) != NULL) {
		if (calendar_ui_delete(ev, &err) < 0) {
			admin_error(ex, 400, err);
		} else {
			log_info("ui event deleted", LOG_EMAIL("email", ev->account->email));
			admin_ui_done(ex, form, ev);
		}
	}
	cJSON_Delete(body);
}

static void admin_ui_respond(struct exchange *ex)
{
	const cJSON *who, *resp;
	const char *err;
	struct cal_event *ev;
	bool form;
	cJSON *body;

	if ((body = admin_input(ex, &form)) == NULL)
		return;
	if ((ev = admin_ui_event(ex, body)) != NULL) {
		who = cJSON_GetObjectItemCaseSensitive(body, "attendee");
		resp = cJSON_GetObjectItemCaseSensitive(body, "response");
		if (!cJSON_IsString(who) || !cJSON_IsString(resp))
			admin_error(ex, 400, "attendee and response are required");
		else if (calendar_ui_respond(ev, who->valuestring, resp->valuestring, &err) < 0)
			admin_error(ex, 400, err);
		else
			admin_ui_done(ex, form, ev);
	}
	cJSON_Delete(body);
}

/*
 * A settings knob: GET shows the settings, DELETE resets them, POST merges a
 * JSON object into them; each answers with the settings as they now are.
 */
static void admin_settings(struct exchange *ex, cJSON *(*to_json)(void), void (*reset)(void),
			   int (*set_json)(const cJSON *body, const char **err))
{
	const char *err;
	cJSON *body;

	if (ex->method == EVHTTP_REQ_GET) {
		exchange_reply_json(ex, 200, to_json());
	} else if (ex->method == EVHTTP_REQ_DELETE) {
		reset();
		exchange_reply_json(ex, 200, to_json());
	} else if ((body = admin_body(ex)) != NULL) {
		if (set_json(body, &err) < 0)
			admin_error(ex, 400, err);
		else
			exchange_reply_json(ex, 200, to_json());
		cJSON_Delete(body);
	}
}

static void admin_pushes(struct exchange *ex)
{
	admin_settings(ex, watch_to_json, watch_reset, watch_set_json);
}

static size_t admin_invalidate_one(const char *email)
{
	struct account *a = store_find_account(email);

	if (a == NULL)
		return 0;
	calendar_invalidate_sync_tokens(a);
	return 1;
}

static void admin_invalidate(struct exchange *ex)
{
	admin_per_account(ex, admin_invalidate_one, "invalidated");
}

static void admin_freebusy(struct exchange *ex)
{
	admin_settings(ex, freebusy_to_json, freebusy_reset, freebusy_set_json);
}

static void admin_stats(struct exchange *ex)
{
	exchange_reply_json(ex, 200, journal_stats_json());
}

static void admin_secrets(struct exchange *ex)
{
	exchange_reply_json(ex, 200, grants_secrets_json());
}

static void admin_requests(struct exchange *ex)
{
	exchange_reply_json(ex, 200, journal_requests_json());
}

static void admin_reset(struct exchange *ex)
{
	store_reset();
	grants_reset();
	faults_clear();
	freebusy_reset();
	watch_reset();
	journal_reset();
	config_clear(&config);
	config_copy(&config, &admin_startup);
	log_info("reset");
	admin_ok(ex);
}

static void admin_unknown(struct exchange *ex)
{
	admin_error(ex, 404, "unknown admin endpoint or method");
}

static const struct route admin_routes[] = {
    {"/_standin/faults", EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE, "admin", FAMILY_ADMIN, admin_faults},
    {"/_standin/config", EVHTTP_REQ_GET | EVHTTP_REQ_POST, "admin", FAMILY_ADMIN, admin_config},
    {"/_standin/accounts", EVHTTP_REQ_GET | EVHTTP_REQ_POST, "admin", FAMILY_ADMIN, admin_accounts},
    {"/_standin/expire-tokens", EVHTTP_REQ_POST, "admin", FAMILY_ADMIN, admin_expire},
    {"/_standin/revoke-grants", EVHTTP_REQ_POST, "admin", FAMILY_ADMIN, admin_revoke},
    {"/_standin/events", EVHTTP_REQ_GET | EVHTTP_REQ_POST, "admin", FAMILY_ADMIN, admin_events},
    {"/_standin/events/move", EVHTTP_REQ_POST, "admin", FAMILY_ADMIN, admin_ui_move},
    {"/_standin/events/delete", EVHTTP_REQ_POST, "admin", FAMILY_ADMIN, admin_ui_delete},
    {"/_standin/events/respond", EVHTTP_REQ_POST, "admin", FAMILY_ADMIN, admin_ui_respond},
    {"/_standin/pushes", EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE, "admin", FAMILY_ADMIN, admin_pushes},
    {"/_standin/invalidate-sync-tokens", EVHTTP_REQ_POST, "admin", FAMILY_ADMIN, admin_invalidate},
    {"/_standin/freebusy", EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE, "admin", FAMILY_ADMIN, admin_freebusy},
    {"/_standin/stats", EVHTTP_REQ_GET, "admin", FAMILY_ADMIN, admin_stats},
    {"/_standin/requests", EVHTTP_REQ_GET, "admin", FAMILY_ADMIN, admin_requests},
    {"/_standin/secrets", EVHTTP_REQ_GET, "admin", FAMILY_ADMIN, admin_secrets},
    {"/_standin/reset", EVHTTP_REQ_POST, "admin", FAMILY_ADMIN, admin_reset},
};

bool admin_route(struct exchange *ex)
{
	if (strncmp(ex->path, "/_standin/", 10) != 0)
		return false;
	if (!exchange_route(ex, admin_routes, sizeof(admin_routes) / sizeof(*admin_routes))) {
		ex->family = FAMILY_ADMIN;
		ex->endpoint = "admin";
		ex->handler = admin_unknown;
	}
	return true;
}
