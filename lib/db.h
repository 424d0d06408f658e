/*
 * db: asynchronous PostgreSQL on the event loop.
 *
 * A small pool of libpq connections in non-blocking mode, each watched by the
 * loop, so a slow or absent database never stops the process: queries wait in
 * a FIFO until a connection is free, and a query that cannot start within
 * queue_timeout_ms (database down) finishes with DB_UNAVAILABLE, which callers
 * treat as transient. Every statement is a single parameterised statement
 * ($1..$n, text format); there is no way to splice values into SQL text.
 * Multi-step changes are written as one statement (CTEs, INSERT ... ON
 * CONFLICT ... RETURNING) so that they are atomic without a transaction that
 * spans callbacks.
 *
 * Lost connections are re-established with capped exponential backoff and
 * jitter; db_ready() reports whether at least one connection is up.
 *
 * A pool opened with fail_fast (the gateway's, whose callers are HTTP
 * clients with timeouts of their own) does not let statements wait while
 * the database is known to be down: no connection is up and the latest
 * connection attempt failed. They finish at once, and those already
 * waiting finish when an attempt fails, as DB_UNAVAILABLE with down set.
 * A queue worker keeps the default: its statements wait up to
 * queue_timeout_ms for the next attempt, so a short outage costs no retry
 * tier.
 *
 * libpq resolves host names synchronously inside PQconnectStart(): use an IP
 * address, hostaddr= or a Unix socket where start-up latency matters.
 */
#ifndef DB_H
#define DB_H

#include <stdbool.h>

#include <libpq-fe.h>

struct event_base;
struct db;

enum db_status {
	DB_OK,		/* PGRES_COMMAND_OK or PGRES_TUPLES_OK */
	DB_ERROR,	/* the server refused the statement: see sqlstate; not worth retrying as is */
	DB_UNAVAILABLE,	/* connection lost, timed out or shutting down: retry later */
};

struct db_result {
	enum db_status status;
	PGresult *res;		/* NULL unless the statement ran; owned by db */
	const char *sqlstate;	/* five characters for DB_ERROR, else NULL */
	const char *error;	/* human text for DB_ERROR and DB_UNAVAILABLE, else NULL */
	bool down;		/* DB_UNAVAILABLE without waiting: the database is known down (fail_fast) */
};

/* Everything in *result lives only for the duration of the callback. */
typedef void (*db_done_cb)(const struct db_result *result, void *arg);

struct db_opts {
	const char *conninfo;		/* libpq connection string or URI */
	const char *application_name;	/* shown in pg_stat_activity; may be NULL */
	int pool_size;			/* connections; 0 means 4 */
	int statement_timeout_ms;	/* server-side; 0 means 15000 */
	int queue_timeout_ms;		/* how long a query may wait for a connection; 0 means 10000 */
	bool fail_fast;			/* no waiting while the database is known down (see above) */
};

/*
 * Start connecting (asynchronously) and return at once. Aborts only on
 * out-of-memory; a bad conninfo shows up as DB_UNAVAILABLE results and an
 * error log line. The caller frees the result with db_free().
 */
struct db *db_new(struct event_base *base, const struct db_opts *opts);

/*
 * Close every connection. Queries still queued or in flight finish with
 * DB_UNAVAILABLE ("shutting down") before this returns. db_free(NULL) is a
 * no-op.
 */
void db_free(struct db *db);

/*
 * Queue one statement with nparams text parameters (NULL entries are SQL
 * NULL). sql and the parameter strings are copied, so the caller may free
 * them at once. done is always called exactly once, never from inside
 * db_query() itself.
 */
void db_query(struct db *db, const char *sql, int nparams, const char *const *params,
	      db_done_cb done, void *arg);

/*
 * db_query() for a statement that only reads. When reads queue up behind
 * busy connections, the next free connection sends them together (libpq's
 * pipeline mode, one Sync): one write and one reply for the batch, in one
 * implicit transaction. A read that fails does not take the others with
 * it (those the server skipped are sent again), but a statement that
 * writes, locks (FOR UPDATE) or calls a function that does must use
 * db_query(): it would share a transaction with unrelated statements.
 *
 * Each answer arrives with the batch's last, so db_read() pays where many
 * small reads each hold up a request (the gateway's API), not where a
 * read starts a longer job whose own latency bounds throughput: the
 * scheduler's lead loads measured 10% fewer meetings per second batched.
 */
void db_read(struct db *db, const char *sql, int nparams, const char *const *params,
	     db_done_cb done, void *arg);

/* True when at least one connection is established. */
bool db_ready(const struct db *db);

/*
 * True when no connection is up and the latest connection attempt failed:
 * the state in which a fail_fast pool answers at once.
 */
bool db_down(const struct db *db);

/* Convenience readers for a DB_OK result: NULL for SQL NULL or out of range. */
const char *db_value(const struct db_result *result, int row, int col);
int db_ntuples(const struct db_result *result);
/* True when the error is a unique violation (23505), the usual "already done" signal. */
bool db_is_unique_violation(const struct db_result *result);

#endif
