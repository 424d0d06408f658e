/*
 * publish: `gcalctl publish-lead` and `gcalctl sample-lead`.
 *
 * publish-lead sends lead.analyzed for a lead that exists, exactly as the
 * platform's webhook does (proto/messages/lead.analyzed.schema.json): to the
 * `leads` exchange, persistent, with a message_id, confirmed by the broker.
 * It is how an operator re-runs a lead by hand and how a newcomer sees the
 * flow. sample-lead first inserts a demo call, transcript and lead for a
 * user (a demo at 15:00 tomorrow, wall-clock time in the user's calendar
 * zone), in one transaction, then publishes it the same way. The message id
 * is printed: it is the trace id the scheduler and the mailer log.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "broker.h"
#include "datetime.h"
#include "gcalctl.h"
#include "ids.h"
#include "log.h"
#include "sql.h"
#include "topology.h"
#include "xmalloc.h"

#define PUBLISH_DEMO_HOUR 15

/* One statement per row; the transaction around them makes the demo data appear whole or not at all. */
static const char publish_call_sql[] =
	"INSERT INTO calls (user_id, phone_number, recording_url, status)"
	" SELECT id, $2, NULL, 'completed' FROM users WHERE id = $1::uuid RETURNING id";
static const char publish_transcript_sql[] =
	"INSERT INTO transcripts (call_id, user_id, content) VALUES ($1::uuid, $2::uuid,"
	" 'Agent: Thanks for your time today. Shall we book a demo?' || chr(10) ||"
	" 'Lead: Yes, tomorrow at three works for me.') RETURNING id";
/* The zone a demo time without offset is read in: the scheduler's choice (calendar zone, else DEFAULT_TIMEZONE). */
static const char publish_zone_sql[] = "SELECT COALESCE(google_calendar_timezone, $2) FROM users WHERE id = $1::uuid";
static const char publish_link_sql[] = "UPDATE calls SET transcript_id = $2::uuid WHERE id = $1::uuid";
static const char publish_insert_sql[] =
	"INSERT INTO lead_analytics (call_id, user_id, phone_number, extracted_name, extracted_email, company_name,"
	" demo_book_datetime, reasoning, lead_status_tag, smart_notification, analysis_type)"
	" VALUES ($1::uuid, $2::uuid, $3, 'Sample Lead', $4, 'Example Corp', $5,"
	" '{\"intent\": \"High\", \"budget\": \"Approved\", \"timeline\": \"This quarter\"}', 'Hot',"
	" 'Asked for a product demo (sample lead from gcalctl)', 'individual') RETURNING id";

/* Publish lead.analyzed for (user, lead); message_id NULL makes a fresh one. Prints it. 0 or -1. */
static int publish_lead(const struct config *cfg, const char *user, const char *lead, const char *call,
			const char *message_id)
{
	cJSON *body = cJSON_CreateObject();
	char occurred[32], *text, *fresh = NULL;
	struct mq_message m = { 0 };
	struct broker *b;
	int rc = -1;

	if (message_id == NULL)
		message_id = fresh = cli_random_id("gcalctl-");
	datetime_format_utc((int64_t)time(NULL), 0, occurred, sizeof(occurred));
	cJSON_AddStringToObject(body, "lead_analytics_id", lead);
	cJSON_AddStringToObject(body, "user_id", user);
	if (call != NULL)
		cJSON_AddStringToObject(body, "call_id", call);
	cJSON_AddStringToObject(body, "occurred_at", occurred);
	text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);

	m.exchange = TOPO_EX_LEADS;
	m.routing_key = TOPO_RK_LEAD_ANALYZED;
	m.body = text;
	m.body_len = strlen(text);
	m.content_type = "application/json";
	m.message_id = message_id;
	m.timestamp = (int64_t)time(NULL);
	b = broker_open(cfg->amqp_url);
	if (b != NULL && broker_publish(b, &m) == 0) {
		printf("published lead %s of user %s as message %s\n", lead, user, message_id);
		rc = 0;
	}
	broker_close(b);
	cJSON_free(text);
	free(fresh);
	return rc;
}

int publish_lead_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "lead", required_argument, NULL, 'l' },
		{ "message-id", required_argument, NULL, 'm' },
		{ 0 },
	};
	const char *user = NULL, *lead = NULL, *message_id = NULL;
	struct config cfg = { 0 };
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'u')
			user = optarg;
		else if (c == 'l')
			lead = optarg;
		else if (c == 'm')
			message_id = optarg;
		else
			return cli_usage();
	}
	if (optind != argc || user == NULL || lead == NULL)
		return cli_usage();
	/* The scheduler would park a malformed id in scheduler.dead; an operator's typo should just fail. */
	if (!ids_is_uuid(user) || !ids_is_uuid(lead)) {
		log_error("--user and --lead must be UUIDs");
		return GCALCTL_EXIT_USAGE;
	}
	cli_config(&cfg, CFG_AMQP);
	rc = publish_lead(&cfg, user, lead, NULL, message_id);
	cfg_free(&cfg);
	return rc < 0 ? GCALCTL_EXIT_FAILED : 0;
}

/* "YYYY-MM-DD 15:00" of tomorrow's date: a time without offset means wall-clock time in the user's zone. */
static void publish_demo_time(char *buf, size_t size)
{
	time_t tomorrow = time(NULL) + 86400;
	struct tm tm;

	gmtime_r(&tomorrow, &tm);
	snprintf(buf, size, "%04d-%02d-%02d %02d:00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, PUBLISH_DEMO_HOUR);
}

/*
 * The scheduler's test for an attendee address (one @, a dot after it, no
 * spaces or list separators): a sample it would skip as no_email is refused
 * here instead.
 */
static bool publish_email_ok(const char *e)
{
	const char *at = strchr(e, '@');
	size_t n = strlen(e);

	if (at == NULL || at == e || strchr(at + 1, '@') != NULL || strchr(at, '.') == NULL || e[n - 1] == '.' ||
	    n > 254)
		return false;
	for (const char *p = e; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f || strchr("<>,;", *p) != NULL)
			return false;
	}
	return true;
}

/*
 * "at" as the scheduler will read it, for people: a time with an offset as
 * given; one without, with its zone and the offset that zone has then
 * ("2026-12-08 15:00 America/New_York (2026-12-08T15:00:00-05:00)"). The
 * caller frees it.
 */
static char *publish_demo_text(PGconn *db, const char *user, const char *at)
{
	const char *fallback = getenv("DEFAULT_TIMEZONE");
	const char *params[] = { user, fallback != NULL && *fallback ? fallback : "UTC" };
	struct datetime dt;
	PGresult *res;
	char *text = NULL;
	char when[32];

	if (datetime_parse(at, strlen(at), &dt) < 0 || dt.has_offset)
		return xstrdup(at);
	res = sql_exec(db, "read the user's zone", publish_zone_sql, 2, params);
	if (res != NULL && PQntuples(res) == 1 && datetime_resolve(&dt, sql_value(res, 0, 0)) == 0) {
		datetime_format(dt.epoch_s, dt.offset_s, when, sizeof(when));
		text = xasprintf("%s %s (%s)", at, sql_value(res, 0, 0), when);
	}
	PQclear(res);
	return text != NULL ? text : xstrdup(at);
}

/* A phone number of the reserved 555-01xx range, different for every sample. The caller frees it. */
static char *publish_phone(void)
{
	char *id = cli_random_id("");
	char *phone = xasprintf("+1555010%.4s", id);

	for (char *p = phone; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)('0' + (*p - 'a'));
	free(id);
	return phone;
}

/* Run one statement of the sample's transaction; its first value (the caller frees it), NULL when it failed. */
static char *publish_step(PGconn *db, const char *what, const char *sql, int n, const char *const *params)
{
	PGresult *res = sql_exec(db, what, sql, n, params);
	char *value = NULL;

	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 0)
		log_error("no such user", LOG_STR("step", what), LOG_STR("user", params[0]));
	else
		value = xstrdup(sql_value(res, 0, 0) ? sql_value(res, 0, 0) : "");
	PQclear(res);
	return value;
}

/* Insert the demo rows for user; fills *call and *lead (the caller frees them). 0 or -1. */
static int publish_insert_sample(PGconn *db, const char *user, const char *email, const char *at, char **call,
			      char **lead)
{
	char *phone = publish_phone(), *transcript = NULL;
	PGresult *res;
	int rc = -1;

	*call = *lead = NULL;
	res = sql_exec(db, "begin the sample", "BEGIN", 0, NULL);
	if (res == NULL) {
		free(phone);
		return -1;
	}
	PQclear(res);
	{
		const char *call_params[] = { user, phone };

		*call = publish_step(db, "insert the sample call", publish_call_sql, 2, call_params);
	}
	if (*call != NULL) {
		const char *params[] = { *call, user };

		transcript = publish_step(db, "insert the sample transcript", publish_transcript_sql, 2, params);
	}
	if (transcript != NULL) {
		const char *link[] = { *call, transcript };

		res = sql_exec(db, "link the transcript", publish_link_sql, 2, link);
		if (res != NULL) {
			const char *params[] = { *call, user, phone, email, at };

			*lead = publish_step(db, "insert the sample lead", publish_insert_sql, 5, params);
		}
		PQclear(res);
	}
	if (*lead != NULL)
		res = sql_exec(db, "commit the sample", "COMMIT", 0, NULL);
	else
		res = sql_exec(db, "roll the sample back", "ROLLBACK", 0, NULL);
	if (res != NULL && *lead != NULL)
		rc = 0;
	PQclear(res);
	free(phone);
	free(transcript);
	return rc;
}

int publish_sample_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "email", required_argument, NULL, 'e' },
		{ "at", required_argument, NULL, 'a' },
		{ 0 },
	};
	const char *user = NULL, *email = "sample.lead@example.com", *at = NULL;
	char demo[64], *call = NULL, *lead = NULL, *shown;
	struct config cfg = { 0 };
	struct datetime dt;
	PGconn *db;
	int c, rc = GCALCTL_EXIT_FAILED;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'u')
			user = optarg;
		else if (c == 'e')
			email = optarg;
		else if (c == 'a')
			at = optarg;
		else
			return cli_usage();
	}
	if (optind != argc || user == NULL)
		return cli_usage();
	if (!ids_is_uuid(user)) {
		log_error("--user must be a UUID");
		return GCALCTL_EXIT_USAGE;
	}
	if (!publish_email_ok(email)) {
		log_error("--email is not an email address", LOG_STR("email", email));
		return GCALCTL_EXIT_USAGE;
	}
	/* The scheduler would record bad_datetime for the lead; say so now instead. */
	if (at != NULL && datetime_parse(at, strlen(at), &dt) < 0) {
		log_error("--at is not an ISO 8601 date and time", LOG_STR("at", at));
		return GCALCTL_EXIT_USAGE;
	}
	if (at == NULL) {
		publish_demo_time(demo, sizeof(demo));
		at = demo;
	}
	cli_config(&cfg, CFG_DATABASE | CFG_AMQP);
	db = sql_connect(cfg.database_url);
	if (db != NULL && publish_insert_sample(db, user, email, at, &call, &lead) == 0) {
		shown = publish_demo_text(db, user, at);
		printf("inserted sample lead %s (call %s, demo at %s, attendee %s)\n", lead, call, shown, email);
		free(shown);
		if (publish_lead(&cfg, user, lead, call, NULL) == 0)
			rc = 0;
	}
	PQfinish(db);
	free(call);
	free(lead);
	cfg_free(&cfg);
	return rc;
}
