/*
 * db-int: what the parts of lib/db share, and nothing outside them includes.
 *
 * The pool is one module in three files, as tmux's parts share tmux.h:
 * db.c (the public API, the pool and each connection's state machine),
 * dbstmt.c (the statements prepared on each connection) and dbbatch.c
 * (reads sent together as one pipeline). The structs are here rather than
 * private to db.c because a connection's state belongs to all three: the
 * state machine owns it, the statement cache and the batch each keep their
 * fields in it.
 */
#ifndef DB_INT_H
#define DB_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "db.h"

struct event;
struct metric;

#define DB_NKEYWORDS	4	/* application_name, connect_timeout, dbname, options */

struct db_query {
	struct db_query *next;
	char *sql;
	char **params;		/* nparams entries, NULL for SQL NULL */
	int nparams;
	db_done_cb done;
	void *arg;
	int64_t deadline_ms;	/* monotonic; while waiting for a connection */
	bool replanned;		/* sent again after 0A000 ("cached plan must not change result type") */
	bool read_only;		/* from db_read(): may share a pipeline with other reads */
	int batched_as;		/* in a batch: the index of the prepared statement it runs as */
	/* The outcome, filled in when the query finishes. */
	enum db_status status;
	bool down;		/* failed without waiting: the database is known down */
	PGresult *res;
	char sqlstate[6];
	char *error;
};

struct db_list {
	struct db_query *head;
	struct db_query *tail;
	int n;
};

enum db_conn_state {
	DB_CONN_DOWN,		/* no PGconn; timer = next attempt */
	DB_CONN_CONNECTING,	/* PQconnectPoll in progress; timer = connect deadline */
	DB_CONN_IDLE,		/* established, nothing in flight */
	DB_CONN_BUSY,		/* q, or the reads in batch, in flight; timer = answer deadline */
};

struct db_conn {
	struct db *db;
	PGconn *pg;
	enum db_conn_state state;
	struct event *ev;	/* watch on PQsocket(pg); NULL when not watching */
	struct event *timer;
	struct db_query *q;
	PGresult *res;		/* the result of q (or of batch.head) kept so far */
	bool flushing;		/* PQflush still has data to send */
	bool doomed;		/* the server announced (FATAL) that it closes this connection */
	char doomed_why[256];	/* what it said */
	bool failing;		/* counted in db->nfailing */
	unsigned attempts;	/* failures since the last success, for backoff */
	int64_t idle_since_ms;	/* when it last became idle */

	/* The batch (dbbatch.c). */
	struct db_list batch;	/* in pipeline mode instead of q: reads in flight, in order */
	struct db_list aborted;	/* reads of the batch that did not run, to go back to the queue */

	/* The statement cache (dbstmt.c); db.c forgets it when the session ends. */
	char **prepared;	/* SQL text of statement "gcal_<i>" on this session; NULL: retired */
	int nprepared;
	int preparing;		/* index being prepared for q, or -1 */
	int executing;		/* index q runs as, or -1 when unprepared */
};

struct db {
	struct event_base *base;
	int pool_size;
	int statement_timeout_ms;
	int queue_timeout_ms;
	int connect_timeout_ms;
	bool fail_fast;

	/* PQconnectStartParams arguments; the values point at the strings below. */
	const char *keywords[DB_NKEYWORDS + 1];
	const char *values[DB_NKEYWORDS + 1];
	char *conninfo;
	char *application_name;
	char *options;
	bool invalid;		/* the connection string cannot be parsed */

	/* Where we connect, for logs: never the password. */
	char *log_host;
	char *log_port;
	char *log_dbname;

	struct db_conn *conns;
	int nup;		/* connections IDLE or BUSY */
	int nfailing;		/* connections whose last attempt failed */
	bool degraded;		/* a loss was logged and no recovery yet */
	bool ever_up;
	bool attempt_failed;	/* the latest connection attempt failed (a loss is not an attempt) */
	char *last_error;	/* why the last attempt failed, for DB_UNAVAILABLE texts */

	struct db_list waiting;
	struct db_list done;
	/* Statements (and preparations) sent, and the round trips they took: their ratio is the batching. */
	struct metric *statements;
	struct metric *round_trips;
	struct event *queue_timer;	/* deadline of waiting.head */
	struct event *dispatch_timer;	/* zero timer that runs the callbacks */
	bool closing;
	bool dispatching;	/* db_on_dispatch is running callbacks */
	bool freed;		/* db_free ran meanwhile: the dispatcher frees the struct */
	uint64_t rng;
};

/* db.c: the queue, the outcomes and the connection's state machine. */
void db_list_push(struct db_list *list, struct db_query *q);
struct db_query *db_list_pop(struct db_list *list);
/* Finish q with a status other than DB_OK; error (allocated) becomes q's. */
void db_fail(struct db *db, struct db_query *q, enum db_status status, const char *sqlstate, char *error);
/* Classify the statement's result (NULL: there was none) and queue its callback; takes res. */
void db_complete(struct db *db, struct db_query *q, PGresult *res);
/* An established connection broke: its statements in flight, if any, are lost. */
void db_conn_lost(struct db_conn *conn, const char *why);
/* What was just queued in libpq is on its way: start the answer deadline and push it out. */
void db_conn_sent(struct db_conn *conn);
/* The connection's answer is complete: it waits for db_pump() to give it the next statement. */
void db_conn_idle(struct db_conn *conn);
/* Give waiting queries to idle connections. */
void db_pump(struct db *db);

/* dbstmt.c: the statements prepared on a connection, "gcal_<i>", found by their SQL text. */
/* Index of sql among the connection's prepared statements, or -1. */
int dbstmt_find(const struct db_conn *conn, const char *sql);
/* Queue q's execution as prepared statement i in libpq; 0 when libpq refused. */
int dbstmt_send_prepared(struct db_conn *conn, const struct db_query *q, int i);
/*
 * Queue q's next step in libpq: its execution when prepared here, else its
 * preparation (or, past the cap, q itself unprepared); 0 when libpq refused.
 */
int dbstmt_send(struct db_conn *conn, struct db_query *q);
/*
 * res answers q run as prepared statement i (-1: unprepared). True when
 * the plan went stale (0A000) and the statement was forgotten, so that q,
 * sent again, prepares it afresh: at most once per query.
 */
bool dbstmt_retire_if_stale(struct db_conn *conn, int i, struct db_query *q, const PGresult *res);
/*
 * res answers conn->q's preparation or prepared execution (res may be
 * NULL). True when q has a second step and must be sent again: it was
 * just prepared, or its plan went stale.
 */
bool dbstmt_next_step(struct db_conn *conn, const PGresult *res);
/* The session is gone, and every statement prepared on it. */
void dbstmt_forget(struct db_conn *conn);

/* dbbatch.c: reads sent together in one pipeline. */
/*
 * Offer the idle conn the head of the queue as a batch: true when it took
 * a pipeline of reads, false when the head should go alone.
 */
bool dbbatch_send(struct db_conn *conn);
/* Read every result of the pipeline that is complete (db_conn_collect() in pipeline mode). */
void dbbatch_collect(struct db_conn *conn);
/*
 * End the batch in flight with DB_UNAVAILABLE and error; the reads the
 * server had refused to run go back to the queue instead (true when there
 * were any).
 */
bool dbbatch_end(struct db_conn *conn, const char *error);

#endif
