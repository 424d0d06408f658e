/*
 * db: a pool of non-blocking libpq connections driven by the libevent loop
 * (see db.h), in the style of libusual's pgsocket.c.
 *
 * Each connection is a small state machine: DOWN (waiting for the next
 * attempt), CONNECTING (PQconnectPoll steps, each re-arming the watch on the
 * socket libpq reports at that moment, because it changes between hosts and
 * SSL/GSS fallbacks), IDLE, and BUSY (one statement in flight, or a batch
 * of reads in pipeline mode). Queries wait in one FIFO; whenever a
 * connection turns idle the head of the FIFO goes to it, or a batch of
 * reads from the head (dbbatch.c). Finished queries are put on a "done" list
 * that a zero timer hands to the callbacks, so a callback never runs inside
 * db_query() or in the middle of a connection's bookkeeping, and a callback
 * may call db_query() or even db_free().
 *
 * statement_timeout is passed in the startup packet ("options" keyword,
 * "-c statement_timeout=N" placed before any options the connection string
 * (or PGOPTIONS) already carries, so an operator's own setting wins); no
 * extra round trip is needed after connecting, and the setting survives
 * every reconnect. application_name and connect_timeout are defaults the
 * connection string may override. libpq ignores connect_timeout in
 * PQconnectPoll mode, so a timer of ours enforces it (10 s by default).
 *
 * What callers see as DB_UNAVAILABLE: no connection within
 * queue_timeout_ms (in a fail_fast pool: at once, when the database is
 * known down), a connection lost with the statement in flight, no
 * answer within statement_timeout + 5 s, shutdown, and server answers that
 * mean "not now": connection and shutdown errors (08xxx, 57P01-57P03),
 * insufficient resources (53xxx), statement_timeout and lock timeouts
 * (57014, 55P03), serialisation failures and deadlocks (40001, 40P01).
 * Every other server error is DB_ERROR with its SQLSTATE.
 *
 * Each statement is prepared once per connection and executed by name
 * after that (dbstmt.c): db_conn_send() sends the step dbstmt.c chooses,
 * and db_conn_done() asks it whether the answer calls for another.
 *
 * A statement in flight on a connection that drops is reported as
 * DB_UNAVAILABLE and never retried here: it may or may not have committed
 * on the server (the commit may have happened just before the connection
 * died), so only the caller can decide whether repeating it is safe; make
 * such statements idempotent (ON CONFLICT, deterministic keys). A statement
 * is never sent on a connection the server has already closed or announced
 * closing, so an idle connection killed by a restart costs no statement.
 * A backend that has been told to end but has not yet said so when the
 * statement arrives takes it with it: nothing on this side can know.
 */
#include "db.h"
#include "db-int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define DB_DEFAULT_POOL_SIZE		4
#define DB_DEFAULT_STATEMENT_TIMEOUT_MS	15000
#define DB_DEFAULT_QUEUE_TIMEOUT_MS	10000
#define DB_DEFAULT_CONNECT_TIMEOUT	"10"	/* seconds, libpq's unit */
#define DB_BACKOFF_MIN_MS		250
#define DB_BACKOFF_MAX_MS		30000
/*
 * The server enforces statement_timeout; this much more is allowed before
 * we decide that the server (or the path to it) is gone.
 */
#define DB_ANSWER_GRACE_MS		5000
#define DB_MAX_PARAMS			65535	/* the protocol's 16-bit count */
/*
 * A connection idle this long is read once before it gets a statement (see
 * db_pump()); one that finished a statement more recently has just been read.
 */
#define DB_IDLE_CHECK_AFTER_MS		100
static void db_queue_arm(struct db *db);

static int64_t db_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval db_tv(int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	return tv;
}

/* libpq messages end in newlines and continue with tabbed hints: keep the first line. */
static char *db_first_line(const char *msg)
{
	size_t n;

	if (msg == NULL || *msg == '\0')
		return xstrdup("unknown error");
	n = strcspn(msg, "\r\n");
	while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == '\t'))
		n--;
	return xstrndup(msg, n);
}

/* xorshift64*: jitter only needs to spread reconnects out, not be secret. */
static uint64_t db_random(struct db *db)
{
	db->rng ^= db->rng >> 12;
	db->rng ^= db->rng << 25;
	db->rng ^= db->rng >> 27;
	return db->rng * 2685821657736338717ULL;
}

static int64_t db_backoff_ms(struct db *db, unsigned attempts)
{
	int64_t delay = DB_BACKOFF_MIN_MS;

	for (unsigned i = 0; i < attempts && delay < DB_BACKOFF_MAX_MS; i++)
		delay *= 2;
	if (delay > DB_BACKOFF_MAX_MS)
		delay = DB_BACKOFF_MAX_MS;
	/* "Equal jitter": half fixed, half random, so a restarted server is not stampeded. */
	return delay / 2 + (int64_t)(db_random(db) % (uint64_t)(delay / 2 + 1));
}

void db_list_push(struct db_list *list, struct db_query *q)
{
	q->next = NULL;
	if (list->tail != NULL)
		list->tail->next = q;
	else
		list->head = q;
	list->tail = q;
	list->n++;
}

struct db_query *db_list_pop(struct db_list *list)
{
	struct db_query *q = list->head;

	if (q != NULL) {
		list->head = q->next;
		if (list->head == NULL)
			list->tail = NULL;
		q->next = NULL;
		list->n--;
	}
	return q;
}

static void db_query_free(struct db_query *q)
{
	for (int i = 0; i < q->nparams; i++)
		free(q->params[i]);
	free(q->params);
	free(q->sql);
	PQclear(q->res);
	free(q->error);
	free(q);
}

/* Queue q for its callback, which the dispatch timer runs on the next loop turn. */
static void db_finish(struct db *db, struct db_query *q)
{
	static const struct timeval zero = { 0, 0 };

	db_list_push(&db->done, q);
	evtimer_add(db->dispatch_timer, &zero);
}

/* Finish q with a status other than DB_OK; error (allocated) becomes q's. */
void db_fail(struct db *db, struct db_query *q, enum db_status status, const char *sqlstate, char *error)
{
	q->status = status;
	if (sqlstate != NULL)
		snprintf(q->sqlstate, sizeof(q->sqlstate), "%s", sqlstate);
	free(q->error);
	q->error = error;
	db_finish(db, q);
}

static void db_deliver(struct db_query *q)
{
	struct db_result result = {
		.status = q->status,
		.res = q->status == DB_UNAVAILABLE ? NULL : q->res,
		.sqlstate = q->status == DB_ERROR ? q->sqlstate : NULL,
		.error = q->status == DB_OK ? NULL : q->error,
		.down = q->down,
	};

	q->done(&result, q->arg);
	db_query_free(q);
}

static void db_on_dispatch(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;

	/*
	 * A callback may call db_free(), which then runs the rest itself and
	 * leaves only this struct for us to release.
	 */
	db->dispatching = true;
	while (!db->freed && db->done.head != NULL)
		db_deliver(db_list_pop(&db->done));
	db->dispatching = false;
	if (db->freed)
		free(db);
}

/*
 * Server answers that mean "not now" rather than "never": connection
 * failures and shutdowns (08, 57P01-57P03), resource exhaustion (53),
 * timeouts (57014 query_canceled, which is how statement_timeout ends a
 * statement; 55P03 lock_not_available) and serialisation conflicts
 * (40001, 40P01). The caller should retry these later.
 */
static bool db_sqlstate_transient(const char *s)
{
	static const char *const codes[] = { "57P01", "57P02", "57P03", "57014", "55P03", "40001", "40P01" };

	if (s == NULL)
		return false;
	if (strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0)
		return true;
	for (size_t i = 0; i < sizeof(codes) / sizeof(*codes); i++)
		if (strcmp(s, codes[i]) == 0)
			return true;
	return false;
}

/* Classify the statement's result (NULL: there was none) and queue its callback; takes res. */
void db_complete(struct db *db, struct db_query *q, PGresult *res)
{
	ExecStatusType st;
	const char *state;
	const char *msg;

	if (res == NULL) {
		db_fail(db, q, DB_ERROR, "XX000", xstrdup("the server returned no result"));
		return;
	}
	st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		q->status = DB_OK;
		q->res = res;
		db_finish(db, q);
		return;
	}
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (msg == NULL)
		msg = *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQresStatus(st);
	if (db_sqlstate_transient(state)) {
		char *line = db_first_line(msg);

		db_fail(db, q, DB_UNAVAILABLE, NULL, xasprintf("database unavailable: %s", line));
		free(line);
		PQclear(res);
		return;
	}
	/* The statement ran and failed: keep the result for PQresultErrorField(). */
	q->res = res;
	db_fail(db, q, DB_ERROR, state != NULL && strlen(state) == 5 ? state : "XX000", db_first_line(msg));
}

/* Drop the PGconn and its watches; the caller has dealt with conn->q and conn->batch. */
static void db_conn_close(struct db_conn *conn)
{
	if (conn->state == DB_CONN_IDLE || conn->state == DB_CONN_BUSY)
		conn->db->nup--;
	if (conn->ev != NULL) {
		event_free(conn->ev);
		conn->ev = NULL;
	}
	evtimer_del(conn->timer);
	PQclear(conn->res);
	conn->res = NULL;
	PQfinish(conn->pg);
	conn->pg = NULL;
	/* A new session knows none of them. */
	dbstmt_forget(conn);
	conn->flushing = false;
	conn->doomed = false;
	conn->state = DB_CONN_DOWN;
}

/* Finish q at once because the database is known down (see db_down()). */
static void db_fail_down(struct db *db, struct db_query *q)
{
	q->down = true;
	db_fail(db, q, DB_UNAVAILABLE, NULL, xasprintf("database unavailable: %s", db->last_error));
}

/*
 * A fail_fast pool's statements do not wait for the next attempt once one
 * has failed with nothing up: the backoff may be 30 s, and the callers
 * (HTTP clients) would rather hear at once. The queue only holds them
 * until the first attempt of an outage fails.
 */
static void db_fail_fast_waiting(struct db *db)
{
	if (!db->fail_fast || db->closing || !db_down(db))
		return;
	while (db->waiting.head != NULL)
		db_fail_down(db, db_list_pop(&db->waiting));
	db_queue_arm(db);
}

/*
 * An attempt failed or an established connection broke: remember why, log
 * the first failure of an outage, close and schedule the next attempt.
 */
static void db_conn_fail(struct db_conn *conn, const char *why, bool was_up)
{
	struct db *db = conn->db;
	struct timeval tv;
	char *error = db_first_line(why);

	if (!db->degraded) {
		log_warn(was_up ? "database connection lost" : "database connection failed",
			 LOG_STR("host", db->log_host), LOG_STR("port", db->log_port),
			 LOG_STR("dbname", db->log_dbname), LOG_STR("error", error));
		db->degraded = true;
	}
	free(db->last_error);
	db->last_error = error;
	if (!conn->failing) {
		conn->failing = true;
		db->nfailing++;
	}
	if (!was_up)
		db->attempt_failed = true;
	db_conn_close(conn);
	tv = db_tv(db_backoff_ms(db, conn->attempts));
	if (conn->attempts < 32)
		conn->attempts++;
	evtimer_add(conn->timer, &tv);
	db_fail_fast_waiting(db);
}

/*
 * End what the connection has in flight with DB_UNAVAILABLE and error; the
 * reads of a batch that the server had already refused to run go back to
 * the queue instead (true when there were any).
 */
static bool db_conn_end_in_flight(struct db_conn *conn, const char *error)
{
	struct db_query *q = conn->q;

	conn->q = NULL;
	if (q != NULL)
		db_fail(conn->db, q, DB_UNAVAILABLE, NULL, xstrdup(error));
	return dbbatch_end(conn, error);
}

/* An established connection broke: its statements in flight, if any, are lost. */
void db_conn_lost(struct db_conn *conn, const char *why)
{
	char *line = db_first_line(why);
	char *error = xasprintf("database connection lost: %s", line);
	bool requeued = db_conn_end_in_flight(conn, error);

	free(error);
	free(line);
	db_conn_fail(conn, why, true);
	if (requeued)
		db_pump(conn->db);
}

static void db_conn_on_io(evutil_socket_t fd, short what, void *arg);

/* Watch the connection's current socket for what (recreated: the socket may be new). */
static bool db_conn_watch(struct db_conn *conn, short what)
{
	evutil_socket_t fd = PQsocket(conn->pg);

	if (conn->ev != NULL) {
		event_free(conn->ev);
		conn->ev = NULL;
	}
	if (fd < 0)
		return false;
	conn->ev = xevent_new(conn->db->base, fd, what, db_conn_on_io, conn);
	event_add(conn->ev, NULL);
	return true;
}

static void db_conn_up(struct db_conn *conn)
{
	struct db *db = conn->db;

	/* Without this, PQsendQueryParams may block on a full socket. */
	if (PQsetnonblocking(conn->pg, 1) != 0 || !db_conn_watch(conn, EV_READ | EV_PERSIST)) {
		db_conn_fail(conn, PQerrorMessage(conn->pg), false);
		return;
	}
	evtimer_del(conn->timer);
	conn->state = DB_CONN_IDLE;
	conn->idle_since_ms = 0;
	conn->attempts = 0;
	db->nup++;
	db->attempt_failed = false;
	if (conn->failing) {
		conn->failing = false;
		db->nfailing--;
	}
	if (db->degraded && db->nfailing == 0) {
		db->degraded = false;
		log_info("database connection recovered", LOG_STR("host", PQhost(conn->pg)),
			 LOG_STR("port", PQport(conn->pg)), LOG_STR("dbname", PQdb(conn->pg)));
	} else if (!db->ever_up) {
		log_info("database connected", LOG_STR("host", PQhost(conn->pg)), LOG_STR("port", PQport(conn->pg)),
			 LOG_STR("dbname", PQdb(conn->pg)), LOG_INT("pool_size", db->pool_size));
	}
	db->ever_up = true;
	db_pump(db);
}

static void db_conn_poll_connect(struct db_conn *conn)
{
	switch (PQconnectPoll(conn->pg)) {
	case PGRES_POLLING_READING:
		if (!db_conn_watch(conn, EV_READ))
			db_conn_fail(conn, PQerrorMessage(conn->pg), false);
		break;
	case PGRES_POLLING_WRITING:
		if (!db_conn_watch(conn, EV_WRITE))
			db_conn_fail(conn, PQerrorMessage(conn->pg), false);
		break;
	case PGRES_POLLING_OK:
		db_conn_up(conn);
		break;
	default:
		db_conn_fail(conn, PQerrorMessage(conn->pg), false);
		break;
	}
}

static void db_conn_on_notice(void *arg, const PGresult *res)
{
	struct db_conn *conn = arg;
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	/* libpq hands an idle connection's last words (FATAL, then EOF) to the notice receiver. */
	if (severity != NULL && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0)) {
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		conn->doomed = true;
		snprintf(conn->doomed_why, sizeof(conn->doomed_why), "%s", msg != NULL ? msg : severity);
	}
	/* Without a receiver libpq prints notices to stderr, outside our JSON lines. */
	log_debug("database notice", LOG_STR("severity", severity),
		  LOG_STR("message", PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)));
}

static void db_conn_start(struct db_conn *conn)
{
	struct db *db = conn->db;
	struct timeval tv;

	conn->pg = PQconnectStartParams(db->keywords, db->values, 1);
	if (conn->pg == NULL) {
		log_error("out of memory starting a database connection");
		abort();
	}
	if (PQstatus(conn->pg) == CONNECTION_BAD) {
		db_conn_fail(conn, PQerrorMessage(conn->pg), false);
		return;
	}
	PQsetNoticeReceiver(conn->pg, db_conn_on_notice, conn);
	conn->state = DB_CONN_CONNECTING;
	/* libpq ignores connect_timeout in PQconnectPoll mode: the deadline is ours. */
	tv = db_tv(db->connect_timeout_ms);
	evtimer_add(conn->timer, &tv);
	/* As if PQconnectPoll had answered PGRES_POLLING_WRITING, as libpq's manual says. */
	if (!db_conn_watch(conn, EV_WRITE))
		db_conn_fail(conn, PQerrorMessage(conn->pg), false);
}

static void db_conn_send(struct db_conn *conn, struct db_query *q);

/* The connection's answer is complete: it waits for db_pump() to give it the next statement. */
void db_conn_idle(struct db_conn *conn)
{
	conn->state = DB_CONN_IDLE;
	conn->idle_since_ms = db_now_ms();
	evtimer_del(conn->timer);
}

/*
 * The answer to a preparation or a prepared execution that needs a second
 * step: true when q went out again (the connection stays busy with it).
 */
static bool db_conn_next_step(struct db_conn *conn, PGresult *res)
{
	struct db_query *q = conn->q;

	if (!dbstmt_next_step(conn, res))
		return false;
	PQclear(res);
	conn->res = NULL;
	db_conn_send(conn, q);
	return true;
}

/* The whole answer is in: hand over the statement and take the next one. */
static void db_conn_done(struct db_conn *conn)
{
	struct db_query *q = conn->q;
	PGresult *res = conn->res;

	if (db_conn_next_step(conn, res))
		return;
	conn->q = NULL;
	conn->res = NULL;
	db_conn_idle(conn);
	db_complete(conn->db, q, res);
	db_pump(conn->db);
}

/* Read every result that is complete; returns when libpq needs more input. */
static void db_conn_collect(struct db_conn *conn)
{
	if (PQpipelineStatus(conn->pg) != PQ_PIPELINE_OFF) {
		dbbatch_collect(conn);
		return;
	}
	while (!PQisBusy(conn->pg)) {
		PGresult *res = PQgetResult(conn->pg);
		ExecStatusType st;

		if (res == NULL) {
			if (PQstatus(conn->pg) != CONNECTION_OK)
				db_conn_lost(conn, PQerrorMessage(conn->pg));
			else
				db_conn_done(conn);
			return;
		}
		st = PQresultStatus(res);
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
			/* There is no API for COPY data: the connection is stuck in it, start afresh. */
			struct db_query *q = conn->q;

			PQclear(res);
			conn->q = NULL;
			db_fail(conn->db, q, DB_ERROR, "0A000", xstrdup("COPY is not supported by db_query"));
			db_conn_close(conn);
			db_conn_start(conn);
			db_pump(conn->db);
			return;
		}
		/* One statement gives one result; should there be more, the first error wins. */
		if (conn->res == NULL || PQresultStatus(conn->res) == PGRES_COMMAND_OK ||
		    PQresultStatus(conn->res) == PGRES_TUPLES_OK) {
			PQclear(conn->res);
			conn->res = res;
		} else {
			PQclear(res);
		}
	}
	if (PQstatus(conn->pg) != CONNECTION_OK)
		db_conn_lost(conn, PQerrorMessage(conn->pg));
}

/*
 * Read (when read is set) and parse what an idle connection has pending;
 * false (and the connection closed) when the server has closed it or
 * announced that it will. PQconsumeInput only reads: PQisBusy parses, which
 * is when an idle connection's FATAL reaches the notice receiver.
 */
static bool db_conn_check_idle(struct db_conn *conn, bool read)
{
	if (read && !PQconsumeInput(conn->pg)) {
		db_conn_lost(conn, PQerrorMessage(conn->pg));
		return false;
	}
	PQisBusy(conn->pg);
	if (PQstatus(conn->pg) != CONNECTION_OK) {
		db_conn_lost(conn, PQerrorMessage(conn->pg));
		return false;
	}
	if (conn->doomed) {
		db_conn_lost(conn, conn->doomed_why);
		return false;
	}
	return true;
}

static void db_conn_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *conn = arg;

	switch (conn->state) {
	case DB_CONN_CONNECTING:
		db_conn_poll_connect(conn);
		break;
	case DB_CONN_IDLE:
		/* Nothing is expected: this is the server closing (or a stray notice). */
		db_conn_check_idle(conn, true);
		break;
	case DB_CONN_BUSY:
		if ((what & EV_READ) && !PQconsumeInput(conn->pg)) {
			db_conn_lost(conn, PQerrorMessage(conn->pg));
			break;
		}
		if (conn->flushing) {
			int r = PQflush(conn->pg);

			if (r < 0) {
				db_conn_lost(conn, PQerrorMessage(conn->pg));
				break;
			}
			if (r == 0) {
				conn->flushing = false;
				db_conn_watch(conn, EV_READ | EV_PERSIST);
			}
		}
		db_conn_collect(conn);
		break;
	case DB_CONN_DOWN:
		break;
	}
}

static void db_conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *conn = arg;
	char *why;

	switch (conn->state) {
	case DB_CONN_DOWN:
		db_conn_start(conn);
		break;
	case DB_CONN_CONNECTING:
		why = xasprintf("no connection within %d ms", conn->db->connect_timeout_ms);
		db_conn_fail(conn, why, false);
		free(why);
		break;
	case DB_CONN_BUSY:
		/* The server's own statement_timeout did not fire: it or the path to it is gone. */
		why = xasprintf("no answer within %d ms",
				conn->db->statement_timeout_ms + DB_ANSWER_GRACE_MS);
		db_conn_lost(conn, why);
		free(why);
		break;
	case DB_CONN_IDLE:
		break;
	}
}

/* What was just queued in libpq is on its way: start the answer deadline and push it out. */
void db_conn_sent(struct db_conn *conn)
{
	struct timeval tv = db_tv((int64_t)conn->db->statement_timeout_ms + DB_ANSWER_GRACE_MS);
	int r;

	evtimer_add(conn->timer, &tv);
	r = PQflush(conn->pg);
	if (r < 0) {
		db_conn_lost(conn, PQerrorMessage(conn->pg));
	} else if (r > 0) {
		/* libpq's manual: wait for read-ready too, the server may need us to read first. */
		conn->flushing = true;
		db_conn_watch(conn, EV_READ | EV_WRITE | EV_PERSIST);
	}
}

static void db_conn_send(struct db_conn *conn, struct db_query *q)
{
	conn->q = q;
	conn->state = DB_CONN_BUSY;
	if (!dbstmt_send(conn, q)) {
		db_conn_lost(conn, PQerrorMessage(conn->pg));
		return;
	}
	db_conn_sent(conn);
}

static void db_queue_arm(struct db *db)
{
	struct timeval tv;

	if (db->waiting.head == NULL) {
		evtimer_del(db->queue_timer);
		return;
	}
	tv = db_tv(db->waiting.head->deadline_ms - db_now_ms());
	evtimer_add(db->queue_timer, &tv);
}

/*
 * Give waiting queries to idle connections: a batch of reads
 * (dbbatch_send()) or else the head alone. One that sat idle a while is
 * checked first: a server that closed it meanwhile (restart, terminated
 * backend) has usually said so already, and finding out costs one read()
 * instead of a statement reported as lost. Under load a connection goes
 * straight from one statement's result to the next statement, and that
 * read (an EAGAIN every time) was one of the gateway's ten system calls
 * per request.
 */
void db_pump(struct db *db)
{
	int64_t now;

	if (db->closing)
		return;
	now = db->waiting.head != NULL ? db_now_ms() : 0;
	for (int i = 0; i < db->pool_size && db->waiting.head != NULL; i++) {
		struct db_conn *conn = &db->conns[i];

		if (conn->state != DB_CONN_IDLE)
			continue;
		if (!db_conn_check_idle(conn, now - conn->idle_since_ms >= DB_IDLE_CHECK_AFTER_MS))
			continue;
		if (!dbbatch_send(conn))
			db_conn_send(conn, db_list_pop(&db->waiting));
	}
	db_queue_arm(db);
}

static void db_on_queue_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	int64_t now = db_now_ms();

	/* Every query waits equally long, so the FIFO is also in deadline order. */
	while (db->waiting.head != NULL && db->waiting.head->deadline_ms <= now) {
		struct db_query *q = db_list_pop(&db->waiting);
		char *error;

		if (db->nup == 0 && db->last_error != NULL)
			error = xasprintf("database unavailable: %s", db->last_error);
		else if (db->nup == 0)
			error = xasprintf("database unavailable: not connected within %d ms", db->queue_timeout_ms);
		else
			error = xasprintf("database unavailable: all %d connections busy for %d ms", db->pool_size,
					  db->queue_timeout_ms);
		db_fail(db, q, DB_UNAVAILABLE, NULL, error);
	}
	db_queue_arm(db);
}

/* libpq's own test for "this dbname is really a connection string". */
static bool db_is_conninfo(const char *s)
{
	return strchr(s, '=') != NULL || strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

/*
 * Build the PQconnectStartParams arrays. Keywords are applied in order and
 * the connection string (expanded from "dbname") overrides what precedes
 * it, so our defaults go before it and the merged options after it.
 */
static void db_prepare(struct db *db, const struct db_opts *opts)
{
	const char *conninfo = opts->conninfo != NULL ? opts->conninfo : "";
	const char *user_options = NULL;
	PQconninfoOption *parsed = NULL;
	int n = 0;

	db->connect_timeout_ms = atoi(DB_DEFAULT_CONNECT_TIMEOUT) * 1000;
	if (db_is_conninfo(conninfo)) {
		char *err = NULL;

		parsed = PQconninfoParse(conninfo, &err);
		if (parsed == NULL) {
			/* libpq's explanation may quote the string, password and all: not logged. */
			log_error("invalid database connection string");
			PQfreemem(err);
			db->invalid = true;
			db->last_error = xstrdup("invalid connection string");
			return;
		}
	} else if (*conninfo != '\0') {
		db->log_dbname = xstrdup(conninfo);
	}
	for (PQconninfoOption *o = parsed; o != NULL && o->keyword != NULL; o++) {
		const char *k = o->keyword;

		if (o->val == NULL || *o->val == '\0')
			continue;
		if (strcmp(k, "host") == 0 || (strcmp(k, "hostaddr") == 0 && db->log_host == NULL)) {
			free(db->log_host);
			db->log_host = xstrdup(o->val);
		} else if (strcmp(k, "port") == 0) {
			db->log_port = xstrdup(o->val);
		} else if (strcmp(k, "dbname") == 0) {
			db->log_dbname = xstrdup(o->val);
		} else if (strcmp(k, "options") == 0) {
			user_options = o->val;
		} else if (strcmp(k, "connect_timeout") == 0 && atoi(o->val) > 0) {
			/* libpq treats anything under 2 s as 2 s. */
			db->connect_timeout_ms = (atoi(o->val) < 2 ? 2 : atoi(o->val)) * 1000;
		}
	}
	/* Setting "options" hides PGOPTIONS from libpq, so carry it over. */
	if (user_options == NULL)
		user_options = getenv("PGOPTIONS");
	if (user_options != NULL && *user_options != '\0')
		db->options = xasprintf("-c statement_timeout=%d %s", db->statement_timeout_ms, user_options);
	else
		db->options = xasprintf("-c statement_timeout=%d", db->statement_timeout_ms);
	PQconninfoFree(parsed);

	db->conninfo = xstrdup(conninfo);
	if (opts->application_name != NULL) {
		db->application_name = xstrdup(opts->application_name);
		db->keywords[n] = "application_name";
		db->values[n++] = db->application_name;
	}
	db->keywords[n] = "connect_timeout";
	db->values[n++] = DB_DEFAULT_CONNECT_TIMEOUT;
	db->keywords[n] = "dbname";
	db->values[n++] = db->conninfo;
	db->keywords[n] = "options";
	db->values[n++] = db->options;
	db->keywords[n] = NULL;
	db->values[n] = NULL;
}

struct db *db_new(struct event_base *base, const struct db_opts *opts)
{
	struct db *db = xcalloc(1, sizeof(*db));
	struct timespec ts;

	db->base = base;
	db->pool_size = opts->pool_size > 0 ? opts->pool_size : DB_DEFAULT_POOL_SIZE;
	db->statement_timeout_ms = opts->statement_timeout_ms > 0 ? opts->statement_timeout_ms
								  : DB_DEFAULT_STATEMENT_TIMEOUT_MS;
	db->queue_timeout_ms = opts->queue_timeout_ms > 0 ? opts->queue_timeout_ms : DB_DEFAULT_QUEUE_TIMEOUT_MS;
	db->fail_fast = opts->fail_fast;
	clock_gettime(CLOCK_REALTIME, &ts);
	db->rng = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16) ^
		  (uint64_t)(uintptr_t)db;
	if (db->rng == 0)
		db->rng = 1;
	db->queue_timer = xevent_new(base, -1, 0, db_on_queue_timeout, db);
	db->dispatch_timer = xevent_new(base, -1, 0, db_on_dispatch, db);
	db->statements = metrics_counter("db_statements_total", "Statements and preparations sent to PostgreSQL.",
					 NULL);
	db->round_trips = metrics_counter("db_round_trips_total",
					  "Round trips to PostgreSQL: one per statement, or one per batch of reads.", NULL);
	db_prepare(db, opts);
	db->conns = xcalloc((size_t)db->pool_size, sizeof(*db->conns));
	for (int i = 0; i < db->pool_size; i++) {
		struct db_conn *conn = &db->conns[i];

		conn->db = db;
		conn->preparing = conn->executing = -1;
		conn->state = DB_CONN_DOWN;
		conn->timer = xevent_new(base, -1, 0, db_conn_on_timer, conn);
		if (!db->invalid)
			db_conn_start(conn);
	}
	return db;
}

void db_free(struct db *db)
{
	if (db == NULL || db->closing)
		return;
	db->closing = true;
	for (int i = 0; i < db->pool_size; i++) {
		struct db_conn *conn = &db->conns[i];

		/* Reads put back in the queue are failed with it below. */
		db_conn_end_in_flight(conn, "database unavailable: shutting down");
		db_conn_close(conn);
		event_free(conn->timer);
	}
	while (db->waiting.head != NULL)
		db_fail(db, db_list_pop(&db->waiting), DB_UNAVAILABLE, NULL,
			xstrdup("database unavailable: shutting down"));
	/* Callbacks may queue more (db_query fails them at once): run until none is left. */
	while (db->done.head != NULL)
		db_deliver(db_list_pop(&db->done));
	event_free(db->queue_timer);
	event_free(db->dispatch_timer);
	free(db->conns);
	free(db->conninfo);
	free(db->application_name);
	free(db->options);
	free(db->log_host);
	free(db->log_port);
	free(db->log_dbname);
	free(db->last_error);
	if (db->dispatching)
		db->freed = true;
	else
		free(db);
}

static void db_enqueue(struct db *db, const char *sql, int nparams, const char *const *params, bool read_only,
		       db_done_cb done, void *arg)
{
	struct db_query *q = xcalloc(1, sizeof(*q));

	q->read_only = read_only;
	q->done = done;
	q->arg = arg;
	q->sql = xstrdup(sql);
	if (nparams < 0 || nparams > DB_MAX_PARAMS) {
		db_fail(db, q, DB_ERROR, "54023", xasprintf("%d parameters: at most %d allowed", nparams,
							       DB_MAX_PARAMS));
		return;
	}
	q->nparams = nparams;
	q->params = xcalloc(nparams > 0 ? (size_t)nparams : 1, sizeof(*q->params));
	for (int i = 0; i < nparams; i++)
		q->params[i] = params[i] != NULL ? xstrdup(params[i]) : NULL;
	if (db->closing) {
		db_fail(db, q, DB_UNAVAILABLE, NULL, xstrdup("database unavailable: shutting down"));
		return;
	}
	if (db->invalid) {
		db_fail(db, q, DB_UNAVAILABLE, NULL, xasprintf("database unavailable: %s", db->last_error));
		return;
	}
	if (db->fail_fast && db_down(db)) {
		db_fail_down(db, q);
		return;
	}
	q->deadline_ms = db_now_ms() + db->queue_timeout_ms;
	db_list_push(&db->waiting, q);
	db_pump(db);
}

void db_query(struct db *db, const char *sql, int nparams, const char *const *params, db_done_cb done, void *arg)
{
	db_enqueue(db, sql, nparams, params, false, done, arg);
}

void db_read(struct db *db, const char *sql, int nparams, const char *const *params, db_done_cb done, void *arg)
{
	db_enqueue(db, sql, nparams, params, true, done, arg);
}

bool db_ready(const struct db *db)
{
	return db != NULL && db->nup > 0;
}

bool db_down(const struct db *db)
{
	return db != NULL && db->nup == 0 && db->attempt_failed;
}

const char *db_value(const struct db_result *result, int row, int col)
{
	if (result == NULL || result->status != DB_OK || result->res == NULL)
		return NULL;
	if (row < 0 || row >= PQntuples(result->res) || col < 0 || col >= PQnfields(result->res))
		return NULL;
	if (PQgetisnull(result->res, row, col))
		return NULL;
	return PQgetvalue(result->res, row, col);
}

int db_ntuples(const struct db_result *result)
{
	if (result == NULL || result->status != DB_OK || result->res == NULL)
		return 0;
	return PQntuples(result->res);
}

bool db_is_unique_violation(const struct db_result *result)
{
	return result != NULL && result->status == DB_ERROR && result->sqlstate != NULL &&
	       strcmp(result->sqlstate, "23505") == 0;
}
