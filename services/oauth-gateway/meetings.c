/*
 * meetings: the read endpoints, answered from the database.
 *
 * The meeting resource is calendar_meeting_json() in SQL, the same function
 * the scheduler uses for its command replies, so a meeting reads the same
 * wherever it comes from; lists are aggregated in the same statement and
 * passed through as text (raw members of the cJSON answer: PostgreSQL wrote
 * them as JSON, and parsing them again would only cost). Every query is filtered by the authenticated
 * user, so another user's meeting or lead is simply not found (404, never
 * 403: its existence is not ours to confirm).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "db.h"
#include "gateway.h"
#include "http.h"
#include "log.h"
#include "xmalloc.h"

#define MEETINGS_LIMIT_DEFAULT 10
#define MEETINGS_LIMIT_MAX 100

/*
 * "Upcoming" means not over yet: a meeting in progress is still on the list.
 * The lists are json_agg, not jsonb_agg: that would take every meeting's
 * jsonb apart and build one new jsonb value only for us to print it as
 * text, which made the query 2.5 times as costly (pgbench, 20 meetings).
 */
static const char meetings_list_sql[] =
	"SELECT COALESCE(json_agg(calendar_meeting_json(m::calendar_meetings)"
	" ORDER BY m.meeting_start_time, m.id), '[]')::text"
	" FROM (SELECT * FROM calendar_meetings WHERE user_id = $1 AND ($2 = 'all' OR status = $2)"
	" AND ($3::boolean OR meeting_end_time > now()) ORDER BY meeting_start_time, id LIMIT $4::int) m";

static const char meetings_get_sql[] =
	"SELECT calendar_meeting_json(m)::text FROM calendar_meetings m WHERE m.id = $1 AND m.user_id = $2";

static const char meetings_lead_sql[] =
	"SELECT (SELECT COALESCE(json_agg(calendar_meeting_json(m) ORDER BY m.meeting_start_time, m.created_at),"
	"  '[]') FROM calendar_meetings m WHERE m.lead_analytics_id = $1 AND m.user_id = $2)::text,"
	" (SELECT jsonb_build_object('outcome', o.outcome, 'reason', o.reason, 'detail', o.detail,"
	"  'updated_at', to_char(o.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))"
	"  FROM calendar_booking_outcomes o WHERE o.lead_analytics_id = $1 AND o.user_id = $2)::text,"
	" EXISTS (SELECT 1 FROM lead_analytics la WHERE la.id = $1 AND la.user_id = $2)";

enum meetings_kind {
	MEETINGS_LIST,
	MEETINGS_ONE,
	MEETINGS_LEAD,
};

struct meetings_read {
	struct http_req *r;
	enum meetings_kind kind;
};

static void meetings_on_result(const struct db_result *res, void *arg)
{
	struct meetings_read *q = arg;
	struct http_req *r = q->r;
	cJSON *body;

	if (http_req_done(r))
		goto out;
	if (res->status != DB_OK) {
		log_error("could not read meetings", LOG_STR("error", res->error));
		http_reply_error(r, 503, "unavailable", "the database is unavailable; try again");
		goto out;
	}
	body = cJSON_CreateObject();
	switch (q->kind) {
	case MEETINGS_LIST:
		cJSON_AddRawToObject(body, "meetings", db_value(res, 0, 0));
		http_reply_json(r, 200, body);
		break;
	case MEETINGS_ONE:
		if (db_ntuples(res) == 0) {
			http_reply_error(r, 404, "not_found", "no such meeting");
			break;
		}
		cJSON_AddRawToObject(body, "meeting", db_value(res, 0, 0));
		http_reply_json(r, 200, body);
		break;
	case MEETINGS_LEAD:
		if (strcmp(db_value(res, 0, 2), "f") == 0 && strcmp(db_value(res, 0, 0), "[]") == 0 &&
		    db_value(res, 0, 1) == NULL) {
			http_reply_error(r, 404, "not_found", "no such lead");
			break;
		}
		cJSON_AddRawToObject(body, "meetings", db_value(res, 0, 0));
		cJSON_AddRawToObject(body, "outcome", db_value(res, 0, 1) ? db_value(res, 0, 1) : "null");
		http_reply_json(r, 200, body);
		break;
	}
	cJSON_Delete(body);
out:
	http_req_unref(r);
	free(q);
}

static void meetings_query(struct gateway *g, struct http_req *r, enum meetings_kind kind, const char *sql,
			   int nparams, const char *const *params)
{
	struct meetings_read *q = xcalloc(1, sizeof(*q));

	q->r = r;
	q->kind = kind;
	http_req_ref(r);
	db_read(g->db, sql, nparams, params, meetings_on_result, q);
}

/* limit: absent is the default, above the maximum is the maximum, anything else not a count is refused. */
static int meetings_limit(const char *text, long *limit)
{
	char *end;

	*limit = MEETINGS_LIMIT_DEFAULT;
	if (text == NULL)
		return 0;
	errno = 0;
	*limit = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || *limit < 1)
		return -1;
	if (*limit > MEETINGS_LIMIT_MAX)
		*limit = MEETINGS_LIMIT_MAX;
	return 0;
}

void meetings_list(struct gateway *g, struct http_req *r)
{
	static const char *const statuses[] = { "scheduled", "cancelled", "rescheduled", "completed", "all" };
	const char *status = http_req_query(r, "status");
	const char *past = http_req_query(r, "include_past");
	bool known = false;
	long limit;
	char limit_text[16];
	const char *params[4];

	if (meetings_limit(http_req_query(r, "limit"), &limit) < 0) {
		http_reply_error(r, 400, "invalid_request", "limit must be a whole number from 1 to %d",
				 MEETINGS_LIMIT_MAX);
		return;
	}
	if (status == NULL)
		status = "scheduled";
	for (size_t i = 0; i < sizeof(statuses) / sizeof(*statuses); i++)
		known = known || strcmp(status, statuses[i]) == 0;
	if (!known) {
		http_reply_error(r, 400, "invalid_request",
				 "status must be one of scheduled, cancelled, rescheduled, completed or all");
		return;
	}
	if (past == NULL)
		past = "false";
	if (strcmp(past, "true") != 0 && strcmp(past, "false") != 0 && strcmp(past, "1") != 0 &&
	    strcmp(past, "0") != 0) {
		http_reply_error(r, 400, "invalid_request", "include_past must be true or false");
		return;
	}
	snprintf(limit_text, sizeof(limit_text), "%ld", limit);
	params[0] = http_req_user(r);
	params[1] = status;
	params[2] = strcmp(past, "true") == 0 || strcmp(past, "1") == 0 ? "true" : "false";
	params[3] = limit_text;
	meetings_query(g, r, MEETINGS_LIST, meetings_list_sql, 4, params);
}

void meetings_get(struct gateway *g, struct http_req *r)
{
	char *id = http_param_uuid(r, 0, "meetingId");
	const char *params[2];

	if (id == NULL)
		return;
	params[0] = id;
	params[1] = http_req_user(r);
	meetings_query(g, r, MEETINGS_ONE, meetings_get_sql, 2, params);
	free(id);
}

void meetings_by_lead(struct gateway *g, struct http_req *r)
{
	char *id = http_param_uuid(r, 0, "leadAnalyticsId");
	const char *params[2];

	if (id == NULL)
		return;
	params[0] = id;
	params[1] = http_req_user(r);
	meetings_query(g, r, MEETINGS_LEAD, meetings_lead_sql, 2, params);
	free(id);
}
