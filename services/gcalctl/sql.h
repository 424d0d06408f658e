/*
 * sql: blocking PostgreSQL for gcalctl.
 *
 * The services use lib/db's asynchronous pool because they must never wait;
 * a command-line tool does one thing at a time, so plain blocking libpq is
 * the simpler and clearer fit. Statements are always parameterised, as
 * everywhere in the project. Failures are logged here, once, with the
 * server's message and what was being done.
 */
#ifndef SQL_H
#define SQL_H

#include <libpq-fe.h>

/* Connect to url (a libpq URI or connection string). NULL when it fails (logged). Close with PQfinish(). */
PGconn *sql_connect(const char *url);

/*
 * Run one statement with n text parameters (NULL entries are SQL NULL).
 * Returns the result (the caller frees it with PQclear()), or NULL when the
 * statement failed; what names the step in the log line ("load the user").
 */
PGresult *sql_exec(PGconn *conn, const char *what, const char *sql, int n, const char *const *params);

/* A value of a result, or NULL for SQL NULL. */
const char *sql_value(const PGresult *res, int row, int col);

/* Rows an INSERT/UPDATE/DELETE changed. */
long sql_changed(PGresult *res);

#endif
