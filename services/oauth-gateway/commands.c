/*
 * commands: meeting writes, sent to the scheduler as RPC commands.
 *
 * The gateway never calls Google Calendar: create, reschedule and cancel
 * are checked here (ids, bodies, date-times, that the meeting or lead is
 * the user's and in a state that allows the change), then published to
 * calendar.commands (meeting.command, message_id = correlation_id =
 * command id, persistent, mandatory) through the bridge, which fills in
 * reply_to; lib/mq sets the user-id property to the gateway's broker user,
 * the one publisher whose commands the scheduler takes (COMMAND_AMQP_USERS).
 * The scheduler checks every field again (lib/fields holds the rules both
 * sides apply). The answer waits for the scheduler's reply, matched by
 * correlation id, for at most COMMANDS_WAIT_S; after that it is 202 with
 * the command id, and the command still runs (the scheduler applies it at
 * most once and its late reply is dropped). A broker that is down, refuses
 * the message or cannot route it is a 503 at once.
 *
 * A command lives until both the broker's confirm and its answer (reply,
 * deadline or failure) have happened, in either order, because the bridge
 * calls back with the confirm whatever became of the request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <event2/event.h>

#include "datetime.h"
#include "db.h"
#include "fields.h"
#include "gateway.h"
#include "http.h"
#include "ids.h"
#include "log.h"
#include "mqbridge.h"
#include "topology.h"
#include "xmalloc.h"

/* How long a write waits for the scheduler before answering 202. */
#define COMMANDS_WAIT_S 8

static const char commands_lead_sql[] =
	"SELECT EXISTS (SELECT 1 FROM lead_analytics WHERE id = $1 AND user_id = $2),"
	" EXISTS (SELECT 1 FROM calendar_meetings WHERE lead_analytics_id = $1 AND user_id = $2"
	"  AND status = 'scheduled'),"
	" EXISTS (SELECT 1 FROM users WHERE id = $2 AND google_calendar_connected)";

static const char commands_meeting_sql[] = "SELECT status FROM calendar_meetings WHERE id = $1 AND user_id = $2";


static const char *const command_names[] = { "create", "reschedule", "cancel", "availability" };
static const char *const command_keys[] = {
	TOPO_RK_MEETING_CREATE,
	TOPO_RK_MEETING_RESCHEDULE,
	TOPO_RK_MEETING_CANCEL,
	TOPO_RK_MEETING_AVAILABILITY,
};

/* An availability range at most this wide: one freeBusy query, well inside what Google allows. */
#define COMMANDS_AVAILABILITY_MAX_DAYS 31

static const char commands_connected_sql[] =
	"SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND google_calendar_connected)";

struct command {
	struct gateway *g;
	struct command *prev, *next;	/* g->commands' list of those waiting for a reply */
	bool waiting;
	bool confirmed;
	struct http_req *r;
	enum command_kind kind;
	char id[IDS_UUID_LEN + 1];
	cJSON *body;			/* the command message */
	struct event *deadline;
};

struct commands {
	struct command *waiting;
};

struct commands *commands_new(void)
{
	return xcalloc(1, sizeof(struct commands));
}

static void command_free(struct command *cmd)
{
	if (cmd->deadline != NULL)
		event_free(cmd->deadline);
	cJSON_Delete(cmd->body);
	http_req_unref(cmd->r);
	free(cmd);
}

static void command_unlist(struct command *cmd)
{
	if (!cmd->waiting)
		return;
	if (cmd->prev != NULL)
		cmd->prev->next = cmd->next;
	else
		cmd->g->commands->waiting = cmd->next;
	if (cmd->next != NULL)
		cmd->next->prev = cmd->prev;
	cmd->prev = cmd->next = NULL;
	cmd->waiting = false;
	if (cmd->deadline != NULL)
		event_del(cmd->deadline);
}

void commands_free(struct commands *c)
{
	if (c == NULL)
		return;
	while (c->waiting != NULL) {
		struct command *cmd = c->waiting;

		command_unlist(cmd);
		command_free(cmd);
	}
	free(c);
}

/* The command has its answer; it goes once the broker's confirm is in too. */
static void command_answered(struct command *cmd)
{
	command_unlist(cmd);
	if (cmd->confirmed)
		command_free(cmd);
}

/* A write the broker took goes on without its caller: 202 with the command's id to look it up. */
static void command_pending(struct command *cmd)
{
	cJSON *body = cJSON_CreateObject();

	cJSON_AddStringToObject(body, "status", "pending");
	cJSON_AddStringToObject(body, "command_id", cmd->id);
	http_reply_json(cmd->r, 202, body);
	cJSON_Delete(body);
	command_answered(cmd);
}

/* A write goes on without its caller (202 pending); a read is worth nothing late (504). */
static void command_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct command *cmd = arg;

	(void)fd;
	(void)what;
	if (cmd->kind == COMMAND_AVAILABILITY) {
		log_warn("no availability from the scheduler in time", LOG_STR("command_id", cmd->id));
		http_reply_error(cmd->r, 504, "timeout", "the scheduler did not answer in time; try again");
		command_answered(cmd);
		return;
	}
	log_info("no reply from the scheduler in time; answered pending", LOG_STR("command", command_names[cmd->kind]),
		 LOG_STR("command_id", cmd->id));
	command_pending(cmd);
}

void commands_on_lost(void *arg)
{
	struct commands *c = arg;
	struct command *cmd, *next;

	for (cmd = c->waiting; cmd != NULL; cmd = next) {
		next = cmd->next;
		if (!cmd->confirmed)
			continue;
		if (cmd->kind == COMMAND_AVAILABILITY) {
			log_warn("broker connection lost before the availability reply", LOG_STR("command_id", cmd->id));
			http_reply_error(cmd->r, 503, "unavailable", "the scheduler cannot be reached; try again");
			command_answered(cmd);
			continue;
		}
		log_info("broker connection lost before the reply; answered pending",
			 LOG_STR("command", command_names[cmd->kind]), LOG_STR("command_id", cmd->id));
		command_pending(cmd);
	}
}

static void command_on_confirm(enum mq_confirm outcome, void *arg)
{
	struct command *cmd = arg;

	cmd->confirmed = true;
	if (!cmd->waiting) {
		command_free(cmd);
		return;
	}
	if (outcome == MQ_CONFIRM_ACK)
		return;
	log_error("the broker did not take a command", LOG_STR("command_id", cmd->id),
		  LOG_STR("outcome", mq_confirm_name(outcome)));
	http_reply_error(cmd->r, 503, "unavailable", "the scheduler cannot be reached; try again");
	command_answered(cmd);
}

/* Publish cmd and wait for its reply; cmd is owned by this module from here on. */
static void command_send(struct command *cmd)
{
	struct gateway *g = cmd->g;
	char *text = cJSON_PrintUnformatted(cmd->body);
	struct mq_message msg = { 0 };
	int rc;

	msg.exchange = TOPO_EX_CALENDAR_COMMANDS;
	msg.routing_key = command_keys[cmd->kind];
	msg.body = text;
	msg.body_len = strlen(text);
	msg.content_type = "application/json";
	msg.message_id = cmd->id;
	msg.correlation_id = cmd->id;
	msg.type = "meeting.command";
	msg.timestamp = (int64_t)time(NULL);
	msg.mandatory = true;
	rc = mqbridge_publish(g->mq, &msg, true, command_on_confirm, cmd);
	cJSON_free(text);
	if (rc < 0) {
		log_warn("broker unavailable; command refused", LOG_STR("command", command_names[cmd->kind]));
		http_reply_error(cmd->r, 503, "unavailable", "the scheduler cannot be reached; try again");
		command_free(cmd);
		return;
	}
	cmd->waiting = true;
	cmd->next = g->commands->waiting;
	if (cmd->next != NULL)
		cmd->next->prev = cmd;
	g->commands->waiting = cmd;
	cmd->deadline = xevent_new(g->base, -1, 0, command_on_deadline, cmd);
	event_add(cmd->deadline, &(struct timeval){ COMMANDS_WAIT_S, 0 });
	log_info("command sent", LOG_STR("command", command_names[cmd->kind]), LOG_STR("command_id", cmd->id),
		 LOG_STR("user", http_req_user(cmd->r)));
}

/* The HTTP status and error code for a scheduler's error code; *ours is the code the client sees. */
static int commands_status(const char *code, const char **ours)
{
	static const struct {
		const char *code;
		int status;
		const char *ours;
	} map[] = {
		{ "invalid", 400, "invalid_request" },	   { "not_found", 404, "not_found" },
		{ "conflict", 409, "conflict" },	   { "not_connected", 409, "not_connected" },
		{ "google_rejected", 502, "google_rejected" }, { "unavailable", 503, "unavailable" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++) {
		if (strcmp(map[i].code, code) == 0) {
			*ours = map[i].ours;
			return map[i].status;
		}
	}
	*ours = "bad_gateway";
	return 502;
}

/* Turn the scheduler's reply into the HTTP answer. */
static void command_answer(struct command *cmd, const struct mq_delivery *d)
{
	cJSON *reply = cJSON_ParseWithLength(d->msg.body, d->msg.body_len);
	cJSON *meeting = cJSON_GetObjectItemCaseSensitive(reply, "meeting");
	cJSON *previous = cJSON_GetObjectItemCaseSensitive(reply, "previous");
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(reply, "error");
	const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "code"));
	const char *message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"));

	cJSON *availability = cJSON_GetObjectItemCaseSensitive(reply, "availability");
	cJSON *busy = cJSON_GetObjectItemCaseSensitive(reply, "busy");

	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok")) && cmd->kind == COMMAND_AVAILABILITY &&
	    cJSON_IsObject(availability)) {
		http_reply_json(cmd->r, 200, availability);
	} else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok")) && cJSON_IsObject(meeting)) {
		cJSON *body = cJSON_CreateObject();

		cJSON_AddItemReferenceToObject(body, "meeting", meeting);
		if (cmd->kind == COMMAND_RESCHEDULE && cJSON_IsObject(previous))
			cJSON_AddItemReferenceToObject(body, "previous", previous);
		http_reply_json(cmd->r, cmd->kind == COMMAND_CREATE ? 201 : 200, body);
		cJSON_Delete(body);
	} else if (code != NULL && cJSON_IsArray(busy)) {
		/* The rep is busy then: the client shows when, and may send the same change with allowConflict. */
		cJSON *body = cJSON_CreateObject();
		cJSON *e = cJSON_AddObjectToObject(body, "error");
		const char *ours;

		cJSON_AddStringToObject(e, "code", "conflict");
		cJSON_AddStringToObject(e, "message", message != NULL ? message : "the calendar is busy at that time");
		cJSON_AddItemReferenceToObject(body, "busy", busy);
		log_info("the rep's calendar is busy at the asked time", LOG_STR("command_id", cmd->id));
		http_reply_json(cmd->r, commands_status(code, &ours), body);
		cJSON_Delete(body);
	} else if (code != NULL) {
		const char *ours;
		int status = commands_status(code, &ours);

		log_info("the scheduler refused a command", LOG_STR("command_id", cmd->id), LOG_STR("error_code", code),
			 LOG_STR("message", message));
		http_reply_error(cmd->r, status, ours, "%s",
				 message != NULL ? message : "the scheduler refused the change");
	} else {
		log_error("unreadable reply from the scheduler", LOG_STR("command_id", cmd->id));
		http_reply_error(cmd->r, 502, "bad_gateway", "the scheduler's answer could not be read");
	}
	cJSON_Delete(reply);
}

void commands_on_reply(const struct mq_delivery *d, void *arg)
{
	struct commands *c = arg;
	struct command *cmd;
	const char *id = d->msg.correlation_id;

	for (cmd = c->waiting; cmd != NULL && id != NULL; cmd = cmd->next) {
		if (strcmp(cmd->id, id) == 0)
			break;
	}
	if (cmd == NULL || id == NULL) {
		log_debug("reply for a command nobody waits for", LOG_STR("command_id", id));
		return;
	}
	command_answer(cmd, d);
	command_answered(cmd);
}

/*
 * A command for r of kind, with its id and user filled in. It holds a reference to r; the caller hands it
 * to command_send() or frees it with command_free().
 */
static struct command *command_new(struct gateway *g, struct http_req *r, enum command_kind kind)
{
	struct command *cmd = xcalloc(1, sizeof(*cmd));

	cmd->g = g;
	cmd->r = r;
	http_req_ref(r);
	cmd->kind = kind;
	ids_uuid4(cmd->id);
	cmd->body = cJSON_CreateObject();
	cJSON_AddStringToObject(cmd->body, "command", command_names[kind]);
	cJSON_AddStringToObject(cmd->body, "command_id", cmd->id);
	cJSON_AddStringToObject(cmd->body, "user_id", http_req_user(r));
	return cmd;
}

/* Body checks: 0, or -1 with why naming the field. */

/* A member that must be a string when present (JSON null counts as absent); *out is NULL when absent. */
static int commands_string(const cJSON *body, const char *name, const char **out, char *why, size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v)) {
		snprintf(why, len, "%s must be a string", name);
		return -1;
	}
	*out = v->valuestring;
	return 0;
}

/* allowConflict, when present, must be a boolean. */
static int commands_allow_conflict(const cJSON *body, struct commands_input *in, char *why, size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "allowConflict");

	if (v != NULL && !cJSON_IsNull(v) && !cJSON_IsBool(v)) {
		snprintf(why, len, "allowConflict must be true or false");
		return -1;
	}
	in->allow_conflict = cJSON_IsTrue(v);
	return 0;
}

/*
 * A date-time the scheduler will understand, not in the past when its instant
 * is known already, and within horizon_days of now. Google answers a time it
 * cannot hold (the end of year 9999 plus the meeting) with "Invalid end time",
 * which reaches the user as a 502 after a round trip: the horizon keeps such
 * times, and typos of the year, out before anything is sent. A time without
 * offset is read as UTC for the horizon: the zone moves it by hours, the
 * horizon is in days.
 */
static int commands_datetime(const char *name, const char *text, int64_t now, long horizon_days, char *why,
			     size_t len)
{
	struct datetime dt;
	int64_t at;

	if (datetime_parse(text, strlen(text), &dt) < 0) {
		snprintf(why, len, "%s must be an ISO 8601 date and time, e.g. 2025-09-18T17:00:00+05:30", name);
		return -1;
	}
	if (dt.has_offset && dt.epoch_s <= now) {
		snprintf(why, len, "%s is in the past", name);
		return -1;
	}
	at = dt.has_offset ? dt.epoch_s
			   : datetime_days_from_civil(dt.year, dt.month, dt.day) * 86400 + dt.hour * 3600 +
				     dt.minute * 60 + dt.second;
	if (at > now + (int64_t)horizon_days * 86400) {
		snprintf(why, len, "%s is more than %ld days ahead; meetings are booked at most that far ahead", name,
			 horizon_days);
		return -1;
	}
	return 0;
}

static int commands_check_create(const cJSON *body, int64_t now, long horizon_days, struct commands_input *in,
				 char *why, size_t len)
{
	if (commands_allow_conflict(body, in, why, len) < 0 ||
	    commands_string(body, "leadAnalyticsId", &in->lead, why, len) < 0 ||
	    commands_string(body, "attendeeEmail", &in->email, why, len) < 0 ||
	    commands_string(body, "attendeeName", &in->name, why, len) < 0 ||
	    commands_string(body, "dateTime", &in->when, why, len) < 0)
		return -1;
	if (in->lead == NULL) {
		snprintf(why, len, "leadAnalyticsId is required");
		return -1;
	}
	if (!ids_is_uuid(in->lead)) {
		snprintf(why, len, "leadAnalyticsId must be a UUID");
		return -1;
	}
	if (in->email != NULL && !fields_email_ok(in->email)) {
		snprintf(why, len, "attendeeEmail is not a valid email address");
		return -1;
	}
	if (in->name != NULL && !fields_name_ok(in->name)) {
		snprintf(why, len, "attendeeName must be at most %d characters, without control characters",
			 FIELDS_NAME_MAX);
		return -1;
	}
	return in->when != NULL ? commands_datetime("dateTime", in->when, now, horizon_days, why, len) : 0;
}

int commands_check_body(enum command_kind kind, const cJSON *body, int64_t now, long horizon_days,
			struct commands_input *in, char *why, size_t len)
{
	memset(in, 0, sizeof(*in));
	switch (kind) {
	case COMMAND_CREATE:
		return commands_check_create(body, now, horizon_days, in, why, len);
	case COMMAND_RESCHEDULE:
		if (commands_allow_conflict(body, in, why, len) < 0 ||
		    commands_string(body, "newDateTime", &in->when, why, len) < 0)
			return -1;
		if (in->when == NULL) {
			snprintf(why, len, "newDateTime is required");
			return -1;
		}
		return commands_datetime("newDateTime", in->when, now, horizon_days, why, len);
	case COMMAND_CANCEL:
		if (commands_string(body, "reason", &in->reason, why, len) < 0)
			return -1;
		if (in->reason != NULL && !fields_reason_ok(in->reason)) {
			snprintf(why, len, "reason must be at most %d characters", FIELDS_REASON_MAX);
			return -1;
		}
		return 0;
	case COMMAND_AVAILABILITY:
		break;
	}
	snprintf(why, len, "unknown command");
	return -1;
}

/* The checked body of r for kind into *in, or -1 after answering 400. */
static int commands_read(struct gateway *g, struct http_req *r, const cJSON *body, enum command_kind kind,
			 struct commands_input *in)
{
	char why[160];

	if (commands_check_body(kind, body, (int64_t)time(NULL), g->cfg.booking_horizon_days, in, why, sizeof(why)) <
	    0) {
		http_reply_error(r, 400, "invalid_request", "%s", why);
		return -1;
	}
	return 0;
}

/* Checks against the database done: send, or answer what is wrong. */

static void commands_on_lead(const struct db_result *res, void *arg)
{
	struct command *cmd = arg;

	if (http_req_done(cmd->r)) {
		command_free(cmd);
		return;
	}
	if (res->status != DB_OK) {
		log_error("could not check a lead", LOG_STR("error", res->error));
		http_reply_error(cmd->r, 503, "unavailable", "the database is unavailable; try again");
	} else if (strcmp(db_value(res, 0, 0), "t") != 0) {
		http_reply_error(cmd->r, 404, "not_found", "no such lead");
	} else if (strcmp(db_value(res, 0, 1), "t") == 0) {
		http_reply_error(cmd->r, 409, "conflict", "the lead already has a scheduled meeting");
	} else if (strcmp(db_value(res, 0, 2), "t") != 0) {
		http_reply_error(cmd->r, 409, "not_connected", "Google Calendar is not connected; connect it first");
	} else {
		command_send(cmd);
		return;
	}
	command_free(cmd);
}

static void commands_on_meeting(const struct db_result *res, void *arg)
{
	struct command *cmd = arg;

	if (http_req_done(cmd->r)) {
		command_free(cmd);
		return;
	}
	if (res->status != DB_OK) {
		log_error("could not check a meeting", LOG_STR("error", res->error));
		http_reply_error(cmd->r, 503, "unavailable", "the database is unavailable; try again");
	} else if (db_ntuples(res) == 0) {
		http_reply_error(cmd->r, 404, "not_found", "no such meeting");
	} else if (strcmp(db_value(res, 0, 0), "scheduled") != 0) {
		http_reply_error(cmd->r, 409, "conflict", "the meeting is %s; only a scheduled meeting can be changed",
				 db_value(res, 0, 0));
	} else {
		command_send(cmd);
		return;
	}
	command_free(cmd);
}

/* Check that the meeting is the user's and scheduled, then send cmd. */
static void commands_check_meeting(struct gateway *g, struct command *cmd, const char *meeting_id)
{
	const char *params[] = { meeting_id, http_req_user(cmd->r) };

	cJSON_AddStringToObject(cmd->body, "meeting_id", meeting_id);
	db_read(g->db, commands_meeting_sql, 2, params, commands_on_meeting, cmd);
}

/* POST /api/calendar/meetings {leadAnalyticsId, attendeeEmail?, attendeeName?, dateTime?} */
void commands_create(struct gateway *g, struct http_req *r)
{
	cJSON *body = http_req_json(r, false);
	struct commands_input in;
	struct command *cmd;
	char *lead_id;
	const char *params[2];

	if (body == NULL || commands_read(g, r, body, COMMAND_CREATE, &in) < 0)
		goto out;
	cmd = command_new(g, r, COMMAND_CREATE);
	lead_id = xstrdup(in.lead);
	ids_lower(lead_id);
	cJSON_AddStringToObject(cmd->body, "lead_analytics_id", lead_id);
	if (in.email != NULL)
		cJSON_AddStringToObject(cmd->body, "attendee_email", in.email);
	if (in.name != NULL)
		cJSON_AddStringToObject(cmd->body, "attendee_name", in.name);
	if (in.when != NULL)
		cJSON_AddStringToObject(cmd->body, "date_time", in.when);
	if (in.allow_conflict)
		cJSON_AddBoolToObject(cmd->body, "allow_conflict", true);
	params[0] = lead_id;
	params[1] = http_req_user(r);
	db_read(g->db, commands_lead_sql, 2, params, commands_on_lead, cmd);
	free(lead_id);
out:
	cJSON_Delete(body);
}

/* PUT /api/calendar/meetings/:meetingId/reschedule {newDateTime} */
void commands_reschedule(struct gateway *g, struct http_req *r)
{
	char *id = http_param_uuid(r, 0, "meetingId");
	cJSON *body = id != NULL ? http_req_json(r, false) : NULL;
	struct commands_input in;
	struct command *cmd;

	if (body == NULL || commands_read(g, r, body, COMMAND_RESCHEDULE, &in) < 0)
		goto out;
	cmd = command_new(g, r, COMMAND_RESCHEDULE);
	cJSON_AddStringToObject(cmd->body, "new_date_time", in.when);
	if (in.allow_conflict)
		cJSON_AddBoolToObject(cmd->body, "allow_conflict", true);
	commands_check_meeting(g, cmd, id);
out:
	cJSON_Delete(body);
	free(id);
}

/* DELETE /api/calendar/meetings/:meetingId {reason?} */
void commands_cancel(struct gateway *g, struct http_req *r)
{
	char *id = http_param_uuid(r, 0, "meetingId");
	/* Some clients and proxies drop DELETE bodies: the reason is optional. */
	cJSON *body = id != NULL ? http_req_json(r, true) : NULL;
	struct commands_input in;
	struct command *cmd;

	if (body == NULL || commands_read(g, r, body, COMMAND_CANCEL, &in) < 0)
		goto out;
	cmd = command_new(g, r, COMMAND_CANCEL);
	if (in.reason != NULL)
		cJSON_AddStringToObject(cmd->body, "reason", in.reason);
	commands_check_meeting(g, cmd, id);
out:
	cJSON_Delete(body);
	free(id);
}

/* GET /api/calendar/availability */

static void commands_on_connected(const struct db_result *res, void *arg)
{
	struct command *cmd = arg;

	if (http_req_done(cmd->r)) {
		command_free(cmd);
		return;
	}
	if (res->status != DB_OK) {
		log_error("could not check a user's connection", LOG_STR("error", res->error));
		http_reply_error(cmd->r, 503, "unavailable", "the database is unavailable; try again");
	} else if (strcmp(db_value(res, 0, 0), "t") != 0) {
		http_reply_error(cmd->r, 409, "not_connected", "Google Calendar is not connected; connect it first");
	} else {
		command_send(cmd);
		return;
	}
	command_free(cmd);
}

/* A query bound: RFC 3339 with an offset, the instant into *out; 0, or -1 with why naming it. */
static int commands_bound(struct http_req *r, const char *name, int64_t *out, char *why, size_t len)
{
	const char *v = http_req_query(r, name);
	struct datetime dt;

	if (v == NULL || *v == '\0') {
		snprintf(why, len, "%s is required", name);
		return -1;
	}
	if (datetime_parse(v, strlen(v), &dt) < 0 || !dt.has_offset) {
		snprintf(why, len, "%s must be an RFC 3339 date and time with an offset, e.g. 2025-09-18T09:00:00+05:30",
			 name);
		return -1;
	}
	*out = dt.epoch_s;
	return 0;
}

/*
 * The rep's busy time in [from, to) and the free spans of at least
 * duration_minutes (default 30), from Google through the scheduler like
 * every Google call: for an agent to offer, during the call, only times the
 * rep has.
 */
void commands_availability(struct gateway *g, struct http_req *r)
{
	const char *minutes_text = http_req_query(r, "duration_minutes");
	int64_t from, to;
	long minutes = 30;
	char why[160], *end = NULL;
	struct command *cmd;
	const char *params[1];

	if (commands_bound(r, "from", &from, why, sizeof(why)) < 0 || commands_bound(r, "to", &to, why, sizeof(why)) < 0)
		goto refuse;
	if (to <= from || to - from > COMMANDS_AVAILABILITY_MAX_DAYS * 86400LL) {
		snprintf(why, sizeof(why), "to must be after from, at most %d days later", COMMANDS_AVAILABILITY_MAX_DAYS);
		goto refuse;
	}
	if (minutes_text != NULL) {
		minutes = strtol(minutes_text, &end, 10);
		if (*minutes_text == '\0' || *end != '\0' || minutes < 5 || minutes > 1440) {
			snprintf(why, sizeof(why), "duration_minutes must be a whole number from 5 to 1440");
			goto refuse;
		}
	}
	cmd = command_new(g, r, COMMAND_AVAILABILITY);
	cJSON_AddStringToObject(cmd->body, "from", http_req_query(r, "from"));
	cJSON_AddStringToObject(cmd->body, "to", http_req_query(r, "to"));
	cJSON_AddNumberToObject(cmd->body, "duration_minutes", (double)minutes);
	params[0] = http_req_user(r);
	db_read(g->db, commands_connected_sql, 1, params, commands_on_connected, cmd);
	return;
refuse:
	http_reply_error(r, 400, "invalid_request", "%s", why);
}
