/*
 * user: `gcalctl user ID`, what support needs to know about one user.
 *
 * Whether the calendar is connected and as which Google account, its zone,
 * when the access token expires and under which key version each token is
 * sealed (never a token itself: the statement does not even read them),
 * the last disconnect and its reason, and what happened to the user's
 * meetings, leads and mails. Everything is read into one JSON document,
 * which --json prints as it is and the default output renders as text, so
 * both always say the same.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "gcalctl.h"
#include "ids.h"
#include "log.h"
#include "sql.h"

/* Rows of each list shown; counts cover everything. */
#define USER_RECENT_MEETINGS "20"
#define USER_RECENT_OUTCOMES "10"

/* A timestamp column as RFC 3339 in UTC. */
#define USER_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const char user_sql[] =
	"SELECT u.email, u.name, u.google_calendar_connected IS TRUE, u.google_email,"
	" COALESCE(NULLIF(u.google_calendar_id, ''), 'primary'), u.google_calendar_timezone, u.google_scopes,"
	" " USER_TS("u.google_connected_at") ", " USER_TS("u.google_token_expiry") ","
	" EXTRACT(EPOCH FROM u.google_token_expiry - now())::bigint,"
	" substring(u.google_access_token from '^v([0-9]+):'), substring(u.google_refresh_token from '^v([0-9]+):'),"
	" " USER_TS("u.google_disconnected_at") ", u.google_disconnect_reason,"
	" " USER_TS("u.google_disconnect_notified_at")
	" FROM users u WHERE u.id = $1::uuid";

enum {
	COL_EMAIL, COL_NAME, COL_CONNECTED, COL_GOOGLE_EMAIL, COL_CALENDAR, COL_ZONE, COL_SCOPES, COL_CONNECTED_AT,
	COL_EXPIRY, COL_EXPIRES_IN, COL_ACCESS_VERSION, COL_REFRESH_VERSION, COL_DISCONNECTED_AT,
	COL_DISCONNECT_REASON, COL_NOTIFIED_AT,
};

static const char user_meeting_counts_sql[] =
	"SELECT COALESCE(status, 'scheduled'), count(*) FROM calendar_meetings WHERE user_id = $1::uuid"
	" GROUP BY 1 ORDER BY 1";

static const char user_meetings_sql[] =
	"SELECT id, status, " USER_TS("meeting_start_time") ", timezone, attendee_email, lead_analytics_id,"
	" invite_email_sent IS TRUE, reminder_email_sent IS TRUE, cancellation_reason"
	" FROM calendar_meetings WHERE user_id = $1::uuid"
	" ORDER BY meeting_start_time DESC, created_at DESC LIMIT " USER_RECENT_MEETINGS;

static const char user_outcome_counts_sql[] =
	"SELECT outcome, reason, count(*) FROM calendar_booking_outcomes WHERE user_id = $1::uuid"
	" GROUP BY 1, 2 ORDER BY 1, 2";

static const char user_outcomes_sql[] =
	"SELECT lead_analytics_id, outcome, reason, detail, attempts, " USER_TS("updated_at")
	" FROM calendar_booking_outcomes WHERE user_id = $1::uuid"
	" ORDER BY updated_at DESC LIMIT " USER_RECENT_OUTCOMES;

static const char user_mail_sql[] =
	"SELECT status, count(*) FROM mail_deliveries WHERE user_id = $1::uuid GROUP BY 1 ORDER BY 1";

/* Column col of row as a JSON string, or null for SQL NULL. */
static void user_add(cJSON *o, const char *key, const PGresult *res, int row, int col)
{
	const char *v = sql_value(res, row, col);

	cJSON_AddItemToObject(o, key, v != NULL ? cJSON_CreateString(v) : cJSON_CreateNull());
}

static void user_add_number(cJSON *o, const char *key, const PGresult *res, int row, int col)
{
	const char *v = sql_value(res, row, col);

	cJSON_AddItemToObject(o, key, v != NULL ? cJSON_CreateNumber(strtod(v, NULL)) : cJSON_CreateNull());
}

static void user_add_bool(cJSON *o, const char *key, const PGresult *res, int row, int col)
{
	const char *v = sql_value(res, row, col);

	cJSON_AddBoolToObject(o, key, v != NULL && strcmp(v, "t") == 0);
}

/* Run a per-user query; NULL when it failed (logged). */
static PGresult *user_query(PGconn *db, const char *what, const char *sql, const char *id)
{
	const char *params[] = { id };

	return sql_exec(db, what, sql, 1, params);
}

static int user_load_calendar(PGconn *db, const char *id, cJSON *doc)
{
	PGresult *r = user_query(db, "load the user", user_sql, id);
	cJSON *cal, *disc;

	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		log_error("no such user", LOG_STR("user", id));
		PQclear(r);
		return -1;
	}
	user_add(doc, "email", r, 0, COL_EMAIL);
	user_add(doc, "name", r, 0, COL_NAME);
	cal = cJSON_AddObjectToObject(doc, "calendar");
	user_add_bool(cal, "connected", r, 0, COL_CONNECTED);
	user_add(cal, "google_email", r, 0, COL_GOOGLE_EMAIL);
	user_add(cal, "calendar_id", r, 0, COL_CALENDAR);
	user_add(cal, "timezone", r, 0, COL_ZONE);
	user_add(cal, "scopes", r, 0, COL_SCOPES);
	user_add(cal, "connected_at", r, 0, COL_CONNECTED_AT);
	user_add(cal, "token_expiry", r, 0, COL_EXPIRY);
	user_add_number(cal, "token_expires_in_seconds", r, 0, COL_EXPIRES_IN);
	user_add_number(cal, "access_token_key_version", r, 0, COL_ACCESS_VERSION);
	user_add_number(cal, "refresh_token_key_version", r, 0, COL_REFRESH_VERSION);
	if (sql_value(r, 0, COL_DISCONNECTED_AT) != NULL) {
		disc = cJSON_AddObjectToObject(doc, "last_disconnect");
		user_add(disc, "at", r, 0, COL_DISCONNECTED_AT);
		user_add(disc, "reason", r, 0, COL_DISCONNECT_REASON);
		user_add(disc, "owner_notified_at", r, 0, COL_NOTIFIED_AT);
	} else {
		cJSON_AddNullToObject(doc, "last_disconnect");
	}
	PQclear(r);
	return 0;
}

/* {"<value of column 0>": <count in column 1>, ...} */
static int user_load_counts(PGconn *db, const char *id, const char *what, const char *sql, cJSON *into,
			    const char *key)
{
	PGresult *r = user_query(db, what, sql, id);
	cJSON *counts;

	if (r == NULL)
		return -1;
	counts = cJSON_AddObjectToObject(into, key);
	for (int i = 0; i < PQntuples(r); i++)
		cJSON_AddNumberToObject(counts, sql_value(r, i, 0), strtod(sql_value(r, i, 1), NULL));
	PQclear(r);
	return 0;
}

static int user_load_meetings(PGconn *db, const char *id, cJSON *doc)
{
	cJSON *meetings = cJSON_AddObjectToObject(doc, "meetings"), *recent;
	PGresult *r;

	if (user_load_counts(db, id, "count the meetings", user_meeting_counts_sql, meetings, "counts") < 0)
		return -1;
	r = user_query(db, "load the meetings", user_meetings_sql, id);
	if (r == NULL)
		return -1;
	recent = cJSON_AddArrayToObject(meetings, "recent");
	for (int i = 0; i < PQntuples(r); i++) {
		cJSON *m = cJSON_CreateObject();

		user_add(m, "id", r, i, 0);
		user_add(m, "status", r, i, 1);
		user_add(m, "start", r, i, 2);
		user_add(m, "timezone", r, i, 3);
		user_add(m, "attendee_email", r, i, 4);
		user_add(m, "lead_analytics_id", r, i, 5);
		user_add_bool(m, "invite_email_sent", r, i, 6);
		user_add_bool(m, "reminder_email_sent", r, i, 7);
		user_add(m, "cancellation_reason", r, i, 8);
		cJSON_AddItemToArray(recent, m);
	}
	PQclear(r);
	return 0;
}

static int user_load_outcomes(PGconn *db, const char *id, cJSON *doc)
{
	cJSON *outcomes = cJSON_AddObjectToObject(doc, "outcomes"), *counts, *recent;
	PGresult *r = user_query(db, "count the outcomes", user_outcome_counts_sql, id);

	if (r == NULL)
		return -1;
	counts = cJSON_AddArrayToObject(outcomes, "counts");
	for (int i = 0; i < PQntuples(r); i++) {
		cJSON *c = cJSON_CreateObject();

		user_add(c, "outcome", r, i, 0);
		user_add(c, "reason", r, i, 1);
		user_add_number(c, "count", r, i, 2);
		cJSON_AddItemToArray(counts, c);
	}
	PQclear(r);
	r = user_query(db, "load the outcomes", user_outcomes_sql, id);
	if (r == NULL)
		return -1;
	recent = cJSON_AddArrayToObject(outcomes, "recent");
	for (int i = 0; i < PQntuples(r); i++) {
		cJSON *o = cJSON_CreateObject();

		user_add(o, "lead_analytics_id", r, i, 0);
		user_add(o, "outcome", r, i, 1);
		user_add(o, "reason", r, i, 2);
		user_add(o, "detail", r, i, 3);
		user_add_number(o, "attempts", r, i, 4);
		user_add(o, "updated_at", r, i, 5);
		cJSON_AddItemToArray(recent, o);
	}
	PQclear(r);
	return 0;
}

static const char *user_s(const cJSON *o, const char *key)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));

	return v != NULL ? v : "-";
}

/* "3 scheduled, 1 cancelled" from a {"name": count} object; "none" when empty. */
static void user_print_counts(const char *label, const cJSON *counts)
{
	const cJSON *c;
	bool first = true;

	printf("%-14s", label);
	cJSON_ArrayForEach(c, counts) {
		printf("%s%d %s", first ? "" : ", ", (int)c->valuedouble, c->string);
		first = false;
	}
	printf("%s\n", first ? "none" : "");
}

static void user_print_tokens(const cJSON *cal)
{
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(cal, "token_expires_in_seconds");
	const cJSON *access = cJSON_GetObjectItemCaseSensitive(cal, "access_token_key_version");
	const cJSON *refresh = cJSON_GetObjectItemCaseSensitive(cal, "refresh_token_key_version");
	char when[32];

	printf("%-14s", "tokens");
	if (cJSON_IsNumber(access))
		printf("access sealed with key v%d", (int)access->valuedouble);
	else
		printf("no access token");
	if (cJSON_IsNumber(in)) {
		cli_format_duration((int64_t)in->valuedouble, when, sizeof(when));
		printf(in->valuedouble >= 0 ? " (expires in %s, %s)" : " (expired %s ago, %s)", when,
		       user_s(cal, "token_expiry"));
	}
	if (cJSON_IsNumber(refresh))
		printf("; refresh sealed with key v%d\n", (int)refresh->valuedouble);
	else
		printf("; no refresh token\n");
}

static void user_print(const char *id, const cJSON *doc)
{
	const cJSON *cal = cJSON_GetObjectItemCaseSensitive(doc, "calendar");
	const cJSON *disc = cJSON_GetObjectItemCaseSensitive(doc, "last_disconnect");
	const cJSON *meetings = cJSON_GetObjectItemCaseSensitive(doc, "meetings");
	const cJSON *outcomes = cJSON_GetObjectItemCaseSensitive(doc, "outcomes");
	const cJSON *x;
	bool first = true;

	printf("%-14s%s  %s <%s>\n", "user", id, user_s(doc, "name"), user_s(doc, "email"));
	printf("%-14s%s", "calendar", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cal, "connected")) ?
		"connected" : "not connected");
	/* A user who never connected has no account to show; one who was disconnected still has the last. */
	if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(cal, "google_email")))
		printf(" (Google account %s, calendar %s, since %s)", user_s(cal, "google_email"),
		       user_s(cal, "calendar_id"), user_s(cal, "connected_at"));
	printf("\n");
	printf("%-14s%s\n", "time zone", user_s(cal, "timezone"));
	printf("%-14s%s\n", "scopes", user_s(cal, "scopes"));
	user_print_tokens(cal);
	if (cJSON_IsObject(disc))
		printf("%-14s%s at %s (owner mailed: %s)\n", "disconnected", user_s(disc, "reason"), user_s(disc, "at"),
		       user_s(disc, "owner_notified_at"));
	user_print_counts("meetings", cJSON_GetObjectItemCaseSensitive(meetings, "counts"));
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(meetings, "recent"))
		printf("  %s  %-11s %s  %s  lead %s  attendee %s  invite %s\n", user_s(x, "start"),
		       user_s(x, "status"), user_s(x, "timezone"), user_s(x, "id"), user_s(x, "lead_analytics_id"),
		       user_s(x, "attendee_email"),
		       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "invite_email_sent")) ? "mailed" : "not mailed");
	printf("%-14s", "outcomes");
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(outcomes, "counts")) {
		const cJSON *reason = cJSON_GetObjectItemCaseSensitive(x, "reason");

		printf("%s%d %s", first ? "" : ", ",
		       (int)cJSON_GetObjectItemCaseSensitive(x, "count")->valuedouble, user_s(x, "outcome"));
		if (cJSON_IsString(reason))
			printf(" (%s)", reason->valuestring);
		first = false;
	}
	printf("%s\n", first ? "none" : "");
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(outcomes, "recent"))
		printf("  %s  %-9s %-17s lead %s  %s\n", user_s(x, "updated_at"), user_s(x, "outcome"),
		       user_s(x, "reason"), user_s(x, "lead_analytics_id"), user_s(x, "detail"));
	user_print_counts("mail", cJSON_GetObjectItemCaseSensitive(doc, "mail"));
}

int user_main(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct config cfg = { 0 };
	cJSON *doc = NULL;
	bool json = false;
	const char *id;
	PGconn *db;
	int c, rc = GCALCTL_EXIT_FAILED;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return cli_usage();
		json = true;
	}
	if (optind + 1 != argc)
		return cli_usage();
	id = argv[optind];
	if (!ids_is_uuid(id)) {
		log_error("the user id must be a UUID");
		return GCALCTL_EXIT_USAGE;
	}
	cli_config(&cfg, CFG_DATABASE);
	db = sql_connect(cfg.database_url);
	if (db != NULL) {
		doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "user_id", id);
		if (user_load_calendar(db, id, doc) == 0 && user_load_meetings(db, id, doc) == 0 &&
		    user_load_outcomes(db, id, doc) == 0 &&
		    user_load_counts(db, id, "count the mails", user_mail_sql, doc, "mail") == 0)
			rc = 0;
	}
	if (rc == 0 && json) {
		char *text = cJSON_Print(doc);

		printf("%s\n", text);
		cJSON_free(text);
	} else if (rc == 0) {
		user_print(id, doc);
	}
	cJSON_Delete(doc);
	PQfinish(db);
	cfg_free(&cfg);
	return rc;
}
