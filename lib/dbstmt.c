/*
 * dbstmt: the statements prepared on each connection of the db pool (see
 * db-int.h for how the parts of db fit together).
 *
 * Statements are prepared, once per connection, the first time a
 * connection sends them (as "gcal_<n>", remembered by their text; callers
 * pass constant SQL, so the set stays small), and executed by name after
 * that: PostgreSQL then plans each statement once per session instead of at
 * every execution, which tests/bench found to be most of the server's CPU
 * per booking. A prepared statement whose result columns changed under it
 * (a migration added a column a SELECT * returns) fails with 0A000 before
 * it runs; it is prepared afresh and sent again, once.
 *
 * The cache lives in the connection (db_conn's prepared, preparing and
 * executing) and dies with its session: db.c forgets it on every close.
 */
#include "db-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "xmalloc.h"

/* Statements prepared per connection at most; beyond, they run unprepared (callers' SQL is constant). */
#define DB_MAX_PREPARED	256

static void dbstmt_name(char *name, size_t size, int i)
{
	snprintf(name, size, "gcal_%d", i);
}

int dbstmt_find(const struct db_conn *conn, const char *sql)
{
	for (int i = 0; i < conn->nprepared; i++)
		if (conn->prepared[i] != NULL && strcmp(conn->prepared[i], sql) == 0)
			return i;
	return -1;
}

int dbstmt_send_prepared(struct db_conn *conn, const struct db_query *q, int i)
{
	char name[24];

	dbstmt_name(name, sizeof(name), i);
	return PQsendQueryPrepared(conn->pg, name, q->nparams, (const char *const *)q->params, NULL, NULL, 0);
}

int dbstmt_send(struct db_conn *conn, struct db_query *q)
{
	char name[24];
	int i = dbstmt_find(conn, q->sql);

	conn->preparing = conn->executing = -1;
	metric_inc(conn->db->statements);
	metric_inc(conn->db->round_trips);
	if (i >= 0) {
		conn->executing = i;
		return dbstmt_send_prepared(conn, q, i);
	}
	if (conn->nprepared >= DB_MAX_PREPARED)
		return PQsendQueryParams(conn->pg, q->sql, q->nparams, NULL, (const char *const *)q->params, NULL,
					 NULL, 0);
	conn->preparing = conn->nprepared;
	dbstmt_name(name, sizeof(name), conn->preparing);
	return PQsendPrepare(conn->pg, name, q->sql, q->nparams, NULL);
}

/* The SQLSTATE of res is 0A000 and q has not been prepared afresh for it yet. */
static bool dbstmt_is_stale_plan(const struct db_query *q, const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return !q->replanned && state != NULL && strcmp(state, "0A000") == 0;
}

/*
 * The statement prepared as "gcal_<i>" answered 0A000: nothing ran. Forget
 * it, so that q (sent again) prepares its text afresh under a new name.
 */
bool dbstmt_retire_if_stale(struct db_conn *conn, int i, struct db_query *q, const PGresult *res)
{
	if (i < 0 || res == NULL || !dbstmt_is_stale_plan(q, res))
		return false;
	free(conn->prepared[i]);
	conn->prepared[i] = NULL;
	q->replanned = true;
	return true;
}

bool dbstmt_next_step(struct db_conn *conn, const PGresult *res)
{
	if (conn->preparing >= 0 && res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK) {
		conn->prepared = xreallocarray(conn->prepared, (size_t)conn->nprepared + 1, sizeof(*conn->prepared));
		conn->prepared[conn->nprepared++] = xstrdup(conn->q->sql);
		return true;
	}
	return dbstmt_retire_if_stale(conn, conn->executing, conn->q, res);
}

void dbstmt_forget(struct db_conn *conn)
{
	for (int i = 0; i < conn->nprepared; i++)
		free(conn->prepared[i]);
	free(conn->prepared);
	conn->prepared = NULL;
	conn->nprepared = 0;
}
