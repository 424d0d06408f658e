/*
 * resync: `gcalctl resync USER [--full]`, sync a user's calendar now.
 *
 * For when support suspects the platform missed a change the rep made in
 * Google Calendar (a push Google lost, a sync that kept failing): it records
 * the request (users.google_sync_requested_at) and, with --full, forgets the
 * user's sync token so the next sync lists the whole calendar again and
 * reconciles every active meeting (docs/sync.md). Then it publishes
 * calendar.changed {user_id, full} to the `calendar` exchange, as the
 * gateway does for a push (proto/messages/calendar.changed.schema.json), so
 * a scheduler runs it at once rather than at its next sweep. The message is
 * mandatory: without a scheduler's queue the command fails rather than the
 * message vanish; the sweep still syncs the user within SYNC_POLL_SECONDS
 * (fully, after --full, since the token is gone).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "broker.h"
#include "gcalctl.h"
#include "ids.h"
#include "log.h"
#include "sql.h"
#include "topology.h"
#include "xmalloc.h"

/* Only a connected calendar syncs; the user's row says which it is when nothing was changed. */
static const char resync_record_sql[] =
	"UPDATE users SET google_sync_requested_at = now(),"
	" google_sync_token = CASE WHEN $2::boolean THEN NULL ELSE google_sync_token END"
	" WHERE id = $1::uuid AND google_calendar_connected RETURNING 1";
static const char resync_user_sql[] = "SELECT 1 FROM users WHERE id = $1::uuid";

/* Record the request for user; 0, or -1 with the reason logged. */
static int resync_record(const struct config *cfg, const char *user, bool full)
{
	const char *params[] = { user, full ? "true" : "false" };
	PGconn *db = sql_connect(cfg->database_url);
	PGresult *res = db != NULL ? sql_exec(db, "record the resync", resync_record_sql, 2, params) : NULL;
	int rc = -1;

	if (res != NULL && PQntuples(res) == 1) {
		rc = 0;
	} else if (res != NULL) {
		PGresult *known = sql_exec(db, "look the user up", resync_user_sql, 1, params);

		if (known != NULL && PQntuples(known) == 0)
			log_error("no such user", LOG_STR("user", user));
		else if (known != NULL)
			log_error("the user's Google Calendar is not connected: nothing to sync",
				  LOG_STR("user", user));
		PQclear(known);
	}
	PQclear(res);
	PQfinish(db);
	return rc;
}

/* Publish calendar.changed {user_id, full}; prints the message id. 0 or -1 (logged). */
static int resync_publish(const struct config *cfg, const char *user, bool full)
{
	cJSON *body = cJSON_CreateObject();
	char *text, *message_id = cli_random_id("gcalctl-resync-");
	struct mq_message m;
	struct broker *b;
	int rc = -1;

	cJSON_AddStringToObject(body, "user_id", user);
	cJSON_AddBoolToObject(body, "full", full);
	text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	topology_calendar_message(&m, TOPO_RK_CALENDAR_CHANGED, text, message_id);
	b = broker_open(cfg->amqp_url);
	if (b != NULL && broker_publish(b, &m) == 0) {
		printf("%s sync of user %s requested as message %s\n", full ? "full" : "incremental", user, message_id);
		rc = 0;
	}
	broker_close(b);
	cJSON_free(text);
	free(message_id);
	return rc;
}

int resync_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "full", no_argument, NULL, 'f' },
		{ 0 },
	};
	struct config cfg = { 0 };
	bool full = false;
	char *user;
	int c, rc = GCALCTL_EXIT_FAILED;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'f')
			full = true;
		else
			return cli_usage();
	}
	if (optind != argc - 1)
		return cli_usage();
	if (!ids_is_uuid(argv[optind])) {
		log_error("the user id must be a UUID");
		return GCALCTL_EXIT_USAGE;
	}
	user = xstrdup(argv[optind]);
	ids_lower(user);
	cli_config(&cfg, CFG_DATABASE | CFG_AMQP);
	if (resync_record(&cfg, user, full) == 0) {
		if (resync_publish(&cfg, user, full) == 0)
			rc = 0;
		else
			log_warn("not published; a scheduler's sweep syncs the user within SYNC_POLL_SECONDS",
				 LOG_STR("user", user));
	}
	cfg_free(&cfg);
	free(user);
	return rc;
}
