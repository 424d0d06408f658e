/*
 * sql: blocking PostgreSQL for gcalctl (see sql.h).
 */
#include "sql.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

/* libpq's messages end with a newline, which would split a JSON log value for no reason. */
static char *sql_message(const char *text)
{
	char *msg = xstrdup(text != NULL ? text : "");
	size_t n = strlen(msg);

	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	return msg;
}

PGconn *sql_connect(const char *url)
{
	/* expand_dbname lets url be a URI or a key=value string and still add our application name. */
	const char *const keys[] = { "dbname", "application_name", NULL };
	const char *const values[] = { url, "gcalctl", NULL };
	PGconn *conn = PQconnectdbParams(keys, values, 1);
	char *msg;

	if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
		return conn;
	msg = sql_message(conn != NULL ? PQerrorMessage(conn) : "out of memory");
	log_error("cannot connect to the database", LOG_STR("error", msg));
	free(msg);
	PQfinish(conn);
	return NULL;
}

PGresult *sql_exec(PGconn *conn, const char *what, const char *sql, int n, const char *const *params)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	char *msg;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	msg = sql_message(res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(conn));
	log_error("database statement failed", LOG_STR("step", what), LOG_STR("error", msg));
	free(msg);
	PQclear(res);
	return NULL;
}

const char *sql_value(const PGresult *res, int row, int col)
{
	if (row >= PQntuples(res) || col >= PQnfields(res) || PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}

long sql_changed(PGresult *res)
{
	return strtol(PQcmdTuples(res), NULL, 10);
}
