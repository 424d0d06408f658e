/*
 * test_db: lib/db against the run's real PostgreSQL (a database of its own,
 * cloned from the migrated template): parameters and NULLs, a thousand
 * queries through four connections, server errors, statement timeouts,
 * reads batched into one pipeline (and what happens when one of them fails,
 * goes stale or loses its connection), backends killed under the pool, an
 * unreachable server that must not stall the loop, a fail_fast pool through
 * an outage, and shutdown with work still queued.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "db.h"
#include "metrics.h"
#include "tap.h"
#include "testenv.h"
#include "xmalloc.h"

struct outcome {
	bool done;
	int calls;
	bool inside_query;	/* the callback ran inside db_query() */
	enum db_status status;
	char sqlstate[6];
	char error[256];
	bool unique;
	bool down;
	int ntuples;
	char *v[4];		/* row 0, columns 0-3; NULL for SQL NULL */
};

static struct event_base *base;
static bool in_db_query;

static void outcome_reset(struct outcome *o)
{
	for (int i = 0; i < 4; i++)
		free(o->v[i]);
	memset(o, 0, sizeof(*o));
}

static void on_result(const struct db_result *r, void *arg)
{
	struct outcome *o = arg;

	o->calls++;
	o->done = true;
	o->inside_query = in_db_query;
	o->status = r->status;
	snprintf(o->sqlstate, sizeof(o->sqlstate), "%s", r->sqlstate ? r->sqlstate : "");
	snprintf(o->error, sizeof(o->error), "%s", r->error ? r->error : "");
	o->unique = db_is_unique_violation(r);
	o->down = r->down;
	o->ntuples = db_ntuples(r);
	for (int i = 0; i < 4; i++) {
		const char *v = db_value(r, 0, i);

		free(o->v[i]);
		o->v[i] = v ? xstrdup(v) : NULL;
	}
}

static void query(struct db *db, const char *sql, int n, const char *const *params, db_done_cb cb, void *arg)
{
	in_db_query = true;
	db_query(db, sql, n, params, cb, arg);
	in_db_query = false;
}

/* Run one statement to completion; the outcome is reset first. */
static void run(struct db *db, struct outcome *o, const char *sql, int n, const char *const *params, int ms)
{
	outcome_reset(o);
	query(db, sql, n, params, on_result, o);
	testenv_run_until(base, &o->done, ms);
}

static void run_for(int ms)
{
	bool never = false;

	testenv_run_until(base, &never, ms);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A loopback port nothing listens on. */
static int closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);
	return ntohs(sa.sin_port);
}

/* A blocking query from a separate connection; returns the first value (caller frees) or NULL. */
static char *admin(const char *url, const char *sql)
{
	PGconn *c = PQconnectdb(url);
	PGresult *res = PQexec(c, sql);
	char *v = NULL;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		v = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(c);
	return v;
}

/* How many of o[0..n) ended once as DB_UNAVAILABLE with why in the error; each is reset. */
static int count_unavailable(struct outcome *o, int n, const char *why)
{
	int count = 0;

	for (int i = 0; i < n; i++) {
		count += o[i].calls == 1 && o[i].status == DB_UNAVAILABLE && strstr(o[i].error, why) != NULL;
		outcome_reset(&o[i]);
	}
	return count;
}

/* Run the loop until the admin query answers want, for ms at most; true if it did. */
static bool admin_wait(const char *url, const char *sql, const char *want, int ms)
{
	long start = now_ms();
	bool seen = false;

	while (!seen && now_ms() - start < ms) {
		char *n;

		run_for(50);
		n = admin(url, sql);
		seen = n != NULL && strcmp(n, want) == 0;
		free(n);
	}
	return seen;
}

static void test_round_trip(struct db *db)
{
	struct outcome o = { 0 };
	const char *ins[] = { "O'Brien; DROP TABLE items; --", NULL, "7" };
	const char *dup[] = { "O'Brien; DROP TABLE items; --", "again", NULL };
	const char *sum[] = { "40", "2" };
	const char *nulls[] = { NULL, NULL };
	const char *idp[1];
	char *id;

	run(db, &o, "SELECT 1", 0, NULL, 15000);
	CHECK(o.done && o.status == DB_OK, "first query succeeds once connected (%s)", o.error);
	CHECK(!o.inside_query, "the callback does not run inside db_query()");
	CHECK(db_ready(db), "db_ready once a connection is up");

	run(db, &o, "SELECT $1::int + $2::int", 2, sum, 5000);
	CHECK_STR(o.v[0], "42", "text parameters are bound");
	run(db, &o, "SELECT $1::text IS NULL, $2::int IS NULL, $1::text", 2, nulls, 5000);
	CHECK_STR(o.v[0], "t", "a NULL parameter arrives as SQL NULL");
	CHECK(o.v[2] == NULL, "db_value gives NULL for SQL NULL");
	CHECK(o.v[3] == NULL, "db_value gives NULL out of range");

	run(db, &o, "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE, note text, qty int)",
	    0, NULL, 5000);
	CHECK(o.status == DB_OK, "CREATE TABLE is DB_OK (%s)", o.error);
	CHECK_INT(o.ntuples, 0, "a command has no rows");

	run(db, &o, "INSERT INTO items (name, note, qty) VALUES ($1, $2, $3) RETURNING id", 3, ins, 5000);
	CHECK(o.status == DB_OK && o.v[0] != NULL, "INSERT ... RETURNING gives the id (%s)", o.error);
	id = xstrdup(o.v[0] ? o.v[0] : "0");
	idp[0] = id;
	run(db, &o, "SELECT name, note, qty, note IS NULL FROM items WHERE id = $1", 1, idp, 5000);
	CHECK_INT(o.ntuples, 1, "the row reads back");
	CHECK_STR(o.v[0], ins[0], "quotes and semicolons in a parameter are data, not SQL");
	CHECK(o.v[1] == NULL, "the NULL column reads back as NULL");
	CHECK_STR(o.v[2], "7", "the integer reads back");
	CHECK_STR(o.v[3], "t", "the server saw a real NULL");
	free(id);

	run(db, &o, "INSERT INTO items (name, note, qty) VALUES ($1, $2, $3)", 3, dup, 5000);
	CHECK(o.status == DB_ERROR, "a duplicate is DB_ERROR");
	CHECK_STR(o.sqlstate, "23505", "with sqlstate 23505");
	CHECK(o.unique, "db_is_unique_violation recognises it");
	CHECK(strstr(o.error, "duplicate key") != NULL, "the error carries the server's message: %s", o.error);

	run(db, &o, "SELEC 1", 0, NULL, 5000);
	CHECK(o.status == DB_ERROR, "a syntax error is DB_ERROR");
	CHECK_STR(o.sqlstate, "42601", "with sqlstate 42601");
	CHECK(!o.unique, "and is not a unique violation");

	run(db, &o, "SHOW statement_timeout", 0, NULL, 5000);
	CHECK_STR(o.v[0], "15s", "statement_timeout defaults to 15 s on every connection");
	run(db, &o, "SHOW application_name", 0, NULL, 5000);
	CHECK_STR(o.v[0], "test_db", "application_name is set");
	outcome_reset(&o);
}

/* Statements are prepared once per connection and survive a column added under a SELECT *. */
static void test_prepared(struct db *db)
{
	static const char select_sql[] = "SELECT * FROM prep_t WHERE id = $1::int";
	struct outcome o = { 0 };
	const char *one[] = { "1" };

	run(db, &o, "CREATE TABLE prep_t (id int PRIMARY KEY, a text)", 0, NULL, 5000);
	run(db, &o, "INSERT INTO prep_t VALUES (1, 'x')", 0, NULL, 5000);
	/* More runs than connections, so every connection has prepared it and used it again. */
	for (int i = 0; i < 12; i++)
		run(db, &o, select_sql, 1, one, 5000);
	CHECK(o.status == DB_OK && o.ntuples == 1 && strcmp(o.v[1], "x") == 0, "a prepared SELECT reads the row");
	run(db, &o, "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", 1,
	    (const char *[]){ select_sql }, 5000);
	CHECK_STR(o.v[0], "1", "the statement is prepared on the connection that ran this");
	run(db, &o, "ALTER TABLE prep_t ADD COLUMN b text DEFAULT 'new'", 0, NULL, 5000);
	for (int i = 0; i < 8; i++) {
		run(db, &o, select_sql, 1, one, 5000);
		if (o.status != DB_OK)
			break;
	}
	CHECK(o.status == DB_OK, "after ALTER TABLE the prepared SELECT * still runs (%s)", o.error);
	CHECK(o.v[2] != NULL && strcmp(o.v[2], "new") == 0, "and returns the new column");
	run(db, &o, "DROP TABLE prep_t", 0, NULL, 5000);
	outcome_reset(&o);
}

struct burst {
	int done;
	int wrong;
	int failed;
	int npids;
	char pids[16][16];
};

struct burst_item {
	struct burst *b;
	int i;
};

static void on_burst(const struct db_result *r, void *arg)
{
	struct burst_item *it = arg;
	struct burst *b = it->b;
	const char *v = db_value(r, 0, 0);
	const char *pid = db_value(r, 0, 1);

	b->done++;
	if (r->status != DB_OK || in_db_query)
		b->failed++;
	else if (v == NULL || atoi(v) != it->i * 2)
		b->wrong++;
	if (pid != NULL) {
		int k;

		for (k = 0; k < b->npids && strcmp(b->pids[k], pid) != 0; k++)
			;
		if (k == b->npids && k < 16)
			snprintf(b->pids[b->npids++], sizeof(b->pids[0]), "%s", pid);
	}
	free(it);
}

static void test_thousand(struct db *db)
{
	struct burst b = { 0 };
	struct outcome o = { 0 };
	long start = now_ms();
	bool all = false;

	for (int i = 0; i < 1000; i++) {
		struct burst_item *it = xcalloc(1, sizeof(*it));
		char num[16];
		const char *p[1] = { num };

		it->b = &b;
		it->i = i;
		snprintf(num, sizeof(num), "%d", i);
		query(db, "SELECT $1::int * 2, pg_backend_pid()", 1, p, on_burst, it);
	}
	while (!all && now_ms() - start < 60000) {
		event_base_loop(base, EVLOOP_ONCE);
		all = b.done == 1000;
	}
	CHECK_INT(b.done, 1000, "1,000 concurrent queries all complete");
	CHECK_INT(b.failed, 0, "none fails");
	CHECK_INT(b.wrong, 0, "each gets its own answer");
	CHECK(b.npids >= 1 && b.npids <= 4, "they share at most the pool's 4 connections (%d)", b.npids);
	printf("# 1000 queries in %ld ms over %d connections\n", now_ms() - start, b.npids);

	run(db, &o, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'test_db'", 0, NULL, 5000);
	CHECK_STR(o.v[0], "4", "the pool holds exactly 4 server connections");
	outcome_reset(&o);
}

static void test_statement_timeout(const char *url)
{
	struct db_opts opts = { .conninfo = url, .application_name = "test_db_timeout", .pool_size = 1,
				.statement_timeout_ms = 300 };
	struct db *db = db_new(base, &opts);
	struct outcome o = { 0 };
	char *pid;
	long start;

	run(db, &o, "SELECT pg_backend_pid()", 0, NULL, 15000);
	CHECK(o.status == DB_OK, "the timeout pool connects");
	pid = xstrdup(o.v[0] ? o.v[0] : "");
	run(db, &o, "SHOW statement_timeout", 0, NULL, 5000);
	CHECK_STR(o.v[0], "300ms", "statement_timeout comes from the options");

	start = now_ms();
	run(db, &o, "SELECT pg_sleep(5)", 0, NULL, 10000);
	CHECK(o.done && o.status == DB_UNAVAILABLE, "a statement over statement_timeout is DB_UNAVAILABLE");
	CHECK(now_ms() - start < 3000, "and ends at the server's timeout (%ld ms)", now_ms() - start);
	CHECK(strstr(o.error, "statement timeout") != NULL, "the error says why: %s", o.error);
	CHECK_STR(o.sqlstate, "", "DB_UNAVAILABLE carries no sqlstate");

	run(db, &o, "SELECT pg_backend_pid()", 0, NULL, 5000);
	CHECK(o.status == DB_OK, "the next statement runs");
	CHECK_STR(o.v[0], pid, "on the same connection: a timeout does not cost the connection");
	free(pid);
	outcome_reset(&o);
	db_free(db);
}

/*
 * Every backend of the pool terminated, one of them in the middle of a
 * statement. What the pool promises: the statement in flight is
 * DB_UNAVAILABLE at once, and no later statement is sent on a connection
 * whose end the server has already announced. pg_terminate_backend() only
 * signals, though: a backend that has not yet acted on it when the next
 * statement arrives takes that statement with it, as any connection lost
 * with a statement in flight does, and nothing on our side of the socket
 * can know. So the test waits (its timeout argument) until the server has
 * really closed them, which is the case the guarantee covers.
 */
static void test_terminated(struct db *db, const char *url)
{
	struct outcome sleeper = { 0 }, o = { 0 }, after[4] = { 0 };
	const char *failed = "";
	int ok = 0, done;
	char *n;
	long start;

	query(db, "SELECT pg_sleep(30)", 0, NULL, on_result, &sleeper);
	CHECK(admin_wait(url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
			      "AND state = 'active' AND query = 'SELECT pg_sleep(30)'", "1", 10000),
	      "the long statement is running on the server");

	n = admin(url, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
		       "WHERE datname = current_database() AND pid <> pg_backend_pid()");
	CHECK(n != NULL && atoi(n) >= 4, "the pool's 4 backends (at least) terminated and gone (%s)", n ? n : "none");
	free(n);
	start = now_ms();
	testenv_run_until(base, &sleeper.done, 10000);
	CHECK(sleeper.done && sleeper.status == DB_UNAVAILABLE, "the statement in flight is DB_UNAVAILABLE (%s)",
	      sleeper.error);
	CHECK(now_ms() - start < 5000, "at once, not at its end (%ld ms)", now_ms() - start);
	CHECK_INT(sleeper.calls, 1, "its callback ran once");

	/* One statement per connection, so every closed connection would be offered one. */
	for (int i = 0; i < 4; i++)
		query(db, "SELECT count(*) FROM items", 0, NULL, on_result, &after[i]);
	start = now_ms();
	do {
		event_base_loop(base, EVLOOP_ONCE);
		done = 0;
		for (int i = 0; i < 4; i++)
			done += after[i].done;
	} while (done < 4 && now_ms() - start < 15000);
	for (int i = 0; i < 4; i++) {
		ok += after[i].calls == 1 && after[i].status == DB_OK;
		if (after[i].status != DB_OK)
			failed = after[i].error;
	}
	CHECK_INT(ok, 4, "later statements all succeed after reconnecting, none lost to a closed connection (%s)",
		  failed);
	for (int i = 0; i < 4; i++)
		outcome_reset(&after[i]);
	CHECK(db_ready(db), "db_ready again");
	start = now_ms();
	for (;;) {
		run(db, &o, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'test_db'", 0, NULL, 5000);
		if ((o.v[0] != NULL && strcmp(o.v[0], "4") == 0) || now_ms() - start > 10000)
			break;
		run_for(100);
	}
	CHECK_STR(o.v[0], "4", "the whole pool reconnects");
	outcome_reset(&sleeper);
	outcome_reset(&o);
}

/*
 * Reads queued behind a busy connection. Each answers $1 * 2, the
 * transaction's start time (shared by the statements of one pipeline, so
 * the number of distinct times is the number of round trips) and $1 / $2.
 */
static const char batch_sql[] = "SELECT $1::int * 2, transaction_timestamp()::text, $1::int / $2::int";

struct batch {
	int n;
	struct outcome o[100];
};

static int batch_distinct_times(struct batch *b, int from, int to)
{
	int distinct = 0;

	for (int i = from; i < to; i++) {
		bool seen = false;

		for (int k = from; k < i && !seen; k++)
			seen = b->o[k].v[1] != NULL && b->o[i].v[1] != NULL && strcmp(b->o[k].v[1], b->o[i].v[1]) == 0;
		distinct += !seen;
	}
	return distinct;
}

/* Occupy the one connection, queue n reads (read i divides by zero when i == zero_at), wait for all. */
static void batch_run(struct db *db, struct batch *b, int n, int zero_at, const char *sleep_sql)
{
	struct outcome sleeper = { 0 };
	long start = now_ms();
	int done;

	for (int i = 0; i < b->n; i++)
		outcome_reset(&b->o[i]);
	b->n = n;
	query(db, sleep_sql, 0, NULL, on_result, &sleeper);
	for (int i = 0; i < n; i++) {
		char num[16];
		const char *p[2] = { num, i == zero_at ? "0" : "1" };

		snprintf(num, sizeof(num), "%d", i);
		in_db_query = true;
		db_read(db, batch_sql, 2, p, on_result, &b->o[i]);
		in_db_query = false;
	}
	do {
		event_base_loop(base, EVLOOP_ONCE);
		done = sleeper.done;
		for (int i = 0; i < n; i++)
			done += b->o[i].done;
	} while (done < n + 1 && now_ms() - start < 30000);
	outcome_reset(&sleeper);
}

static int batch_count_ok(struct batch *b)
{
	int ok = 0;

	for (int i = 0; i < b->n; i++)
		ok += b->o[i].calls == 1 && !b->o[i].inside_query && b->o[i].status == DB_OK && b->o[i].v[0] != NULL &&
		      atoi(b->o[i].v[0]) == i * 2;
	return ok;
}

/*
 * A batch of four reads in flight on the one connection, the first of them
 * sleeping on the server: r is reset and filled in as they finish.
 */
static void batch_sleeping(struct db *db, const char *url, struct outcome r[4])
{
	const char *zero[] = { "0" }, *long_sleep[] = { "30" };
	struct outcome warm = { 0 }, sleeper = { 0 };

	for (int i = 0; i < 4; i++)
		outcome_reset(&r[i]);
	/* Prepared on this connection first: a batch carries only prepared statements. */
	db_read(db, "SELECT pg_sleep($1::float)", 1, zero, on_result, &warm);
	testenv_run_until(base, &warm.done, 15000);
	query(db, "SELECT pg_sleep(0.2)", 0, NULL, on_result, &sleeper);
	for (int i = 0; i < 4; i++)
		db_read(db, "SELECT pg_sleep($1::float)", 1, i == 0 ? long_sleep : zero, on_result, &r[i]);
	testenv_run_until(base, &sleeper.done, 5000);
	CHECK(admin_wait(url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'test_db_batch'"
			      " AND state = 'active' AND wait_event = 'PgSleep'", "1", 10000),
	      "the batch's first read sleeps on the server");
	outcome_reset(&warm);
	outcome_reset(&sleeper);
}

static void test_batched_reads(const char *url)
{
	struct db_opts opts = { .conninfo = url, .application_name = "test_db_batch", .pool_size = 1 };
	struct db *db = db_new(base, &opts);
	static struct batch b;
	struct outcome o = { 0 }, r[4] = { 0 };
	int aborted_ok = 0, resent = 0;
	double statements, trips;

	/* The first run prepares both statements; batches carry only statements prepared on the connection. */
	batch_run(db, &b, 1, -1, "SELECT pg_sleep(0.2)");
	CHECK(b.o[0].status == DB_OK, "a read runs (%s)", b.o[0].error);

	statements = metric_value(metrics_counter("db_statements_total", "", NULL));
	trips = metric_value(metrics_counter("db_round_trips_total", "", NULL));
	batch_run(db, &b, 20, -1, "SELECT pg_sleep(0.2)");
	CHECK_INT(batch_count_ok(&b), 20, "20 reads queued behind a busy connection each get their own answer, once");
	CHECK_INT(batch_distinct_times(&b, 0, 20), 1, "in one round trip: they share one implicit transaction");
	CHECK_INT((int)(metric_value(metrics_counter("db_statements_total", "", NULL)) - statements), 21,
		  "db_statements_total counts the sleeper and the 20 reads");
	CHECK_INT((int)(metric_value(metrics_counter("db_round_trips_total", "", NULL)) - trips), 2,
		  "db_round_trips_total counts two round trips");

	batch_run(db, &b, 100, -1, "SELECT pg_sleep(0.2)");
	CHECK_INT(batch_count_ok(&b), 100, "100 queued reads all answered");
	CHECK_INT(batch_distinct_times(&b, 0, 100), 2, "in two round trips: a batch holds at most 64");

	batch_run(db, &b, 10, 4, "SELECT pg_sleep(0.2)");
	CHECK(b.o[4].calls == 1 && b.o[4].status == DB_ERROR && strcmp(b.o[4].sqlstate, "22012") == 0,
	      "a failing read in a batch gets its own error (%s %s)", b.o[4].sqlstate, b.o[4].error);
	for (int i = 0; i < 10; i++)
		aborted_ok += i != 4 && b.o[i].calls == 1 && b.o[i].status == DB_OK && atoi(b.o[i].v[0]) == i * 2;
	CHECK_INT(aborted_ok, 9, "the reads around it still succeed, the ones the server skipped sent again");
	CHECK(b.o[5].v[1] != NULL && b.o[0].v[1] != NULL && strcmp(b.o[5].v[1], b.o[0].v[1]) != 0,
	      "those after it ran in a later round trip");

	/* db_query() statements are never batched, even when they only read. */
	{
		struct outcome w[5] = { 0 }, sleeper = { 0 };
		int distinct = 0;

		query(db, "SELECT pg_sleep(0.2)", 0, NULL, on_result, &sleeper);
		for (int i = 0; i < 5; i++)
			query(db, "SELECT clock_timestamp()::text", 0, NULL, on_result, &w[i]);
		testenv_run_until(base, &w[4].done, 10000);
		for (int i = 0; i < 5; i++) {
			bool seen = false;

			for (int k = 0; k < i; k++)
				seen = seen || (w[k].v[0] && w[i].v[0] && strcmp(w[k].v[0], w[i].v[0]) == 0);
			distinct += w[i].status == DB_OK && !seen;
			outcome_reset(&w[i]);
		}
		CHECK_INT(distinct, 5, "db_query() statements go one at a time");
		outcome_reset(&sleeper);
	}

	/* A column added under a prepared SELECT * while it waits in a batch: prepared afresh, answered. */
	run(db, &o, "CREATE TABLE batch_t (id int PRIMARY KEY, a text)", 0, NULL, 5000);
	run(db, &o, "INSERT INTO batch_t VALUES (1, 'x')", 0, NULL, 5000);
	{
		struct outcome after[6] = { 0 }, sleeper = { 0 };
		const char *one[] = { "1" };
		int fresh = 0;

		outcome_reset(&o);
		db_read(db, "SELECT * FROM batch_t WHERE id = $1::int", 1, one, on_result, &o);
		testenv_run_until(base, &o.done, 5000);
		run(db, &o, "ALTER TABLE batch_t ADD COLUMN b text DEFAULT 'new'", 0, NULL, 5000);
		query(db, "SELECT pg_sleep(0.2)", 0, NULL, on_result, &sleeper);
		for (int i = 0; i < 6; i++)
			db_read(db, "SELECT * FROM batch_t WHERE id = $1::int", 1, one, on_result, &after[i]);
		testenv_run_until(base, &after[5].done, 10000);
		for (int i = 0; i < 6; i++) {
			fresh += after[i].calls == 1 && after[i].status == DB_OK && after[i].v[2] &&
				 strcmp(after[i].v[2], "new") == 0;
			outcome_reset(&after[i]);
		}
		CHECK_INT(fresh, 6, "reads batched after ALTER TABLE return the new column");
		outcome_reset(&sleeper);
	}

	/*
	 * A backend killed in the middle of a batch: the read it was running is
	 * DB_UNAVAILABLE; those it never reached are sent again and answered.
	 */
	batch_sleeping(db, url, r);
	free(admin(url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
			" WHERE application_name = 'test_db_batch'"));
	testenv_run_until(base, &r[3].done, 10000);
	CHECK(r[0].calls == 1 && r[0].status == DB_UNAVAILABLE,
	      "the read running when its backend is killed is DB_UNAVAILABLE (%s)", r[0].error);
	for (int i = 1; i < 4; i++)
		resent += r[i].calls == 1 && r[i].status == DB_OK;
	CHECK_INT(resent, 3, "the reads behind it in the batch run on the next connection");
	run(db, &o, "DROP TABLE batch_t", 0, NULL, 15000);
	CHECK(o.status == DB_OK, "the pool reconnects after the loss (%s)", o.error);

	/* db_free() with a batch in flight ends each of its reads once, as DB_UNAVAILABLE. */
	batch_sleeping(db, url, r);
	db_free(db);
	CHECK_INT(count_unavailable(r, 4, "shutting down"), 4, "db_free ends a batch in flight, each read once");
	outcome_reset(&o);
	for (int i = 0; i < b.n; i++)
		outcome_reset(&b.o[i]);
}

static int ticks;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	ticks++;
}

static void test_unreachable(void)
{
	char *url = xasprintf("postgresql://postgres@127.0.0.1:%d/none", closed_port());
	struct db_opts opts = { .conninfo = url, .pool_size = 2, .queue_timeout_ms = 600 };
	struct timeval ten = { 0, 10000 };
	struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	struct outcome o = { 0 };
	struct db *db;
	long start, took;

	event_add(tick, &ten);
	db = db_new(base, &opts);
	ticks = 0;
	start = now_ms();
	run(db, &o, "SELECT 1", 0, NULL, 10000);
	took = now_ms() - start;
	CHECK(o.done && o.status == DB_UNAVAILABLE, "an unreachable server gives DB_UNAVAILABLE");
	CHECK(took >= 550 && took < 3000, "after queue_timeout_ms (%ld ms)", took);
	CHECK(strncmp(o.error, "database unavailable: ", 22) == 0 && strstr(o.error, "refused") != NULL,
	      "naming the last connect error: %s", o.error);
	CHECK(ticks >= 20, "the loop kept running meanwhile (%d ticks of 10 ms)", ticks);
	CHECK(!db_ready(db), "db_ready is false");
	CHECK(!o.inside_query, "not called from inside db_query()");
	event_free(tick);
	outcome_reset(&o);
	db_free(db);
	free(url);
}

/* Run the loop until db_down(db) is want, for ms at most; true if it did. */
static bool wait_down(struct db *db, bool want, int ms)
{
	long start = now_ms();

	while (db_down(db) != want && now_ms() - start < ms)
		run_for(20);
	return db_down(db) == want;
}

/*
 * A fail_fast pool (the gateway's) does not make statements wait out the
 * reconnect backoff while the database is known down: an unreachable server,
 * then a real outage (the database refuses connections, its backends are
 * terminated) and the recovery after it.
 */
static void test_fail_fast(void)
{
	char *dead = xasprintf("postgresql://postgres@127.0.0.1:%d/none", closed_port());
	char *url = testenv_database("db_outage");
	const char *admin_url = testenv_require("TEST_PG_URL");
	struct db_opts opts = { .conninfo = dead, .pool_size = 2, .fail_fast = true };
	struct outcome o = { 0 };
	struct db *db = db_new(base, &opts);
	long start, took;

	start = now_ms();
	run(db, &o, "SELECT 1", 0, NULL, 15000);
	took = now_ms() - start;
	CHECK(o.done && o.status == DB_UNAVAILABLE && o.down,
	      "a statement queued before the first attempt fails is DB_UNAVAILABLE, down (%s)", o.error);
	CHECK(took < 1000, "when that attempt fails, not after queue_timeout_ms (%ld ms)", took);
	CHECK(strstr(o.error, "refused") != NULL, "naming the connect error: %s", o.error);
	CHECK(db_down(db) && !db_ready(db), "db_down, not db_ready");
	start = now_ms();
	run(db, &o, "SELECT 1", 0, NULL, 15000);
	CHECK(o.done && o.down && now_ms() - start < 100, "the next statement fails at once (%ld ms)",
	      now_ms() - start);
	CHECK(!o.inside_query, "still never from inside db_query()");
	db_free(db);

	opts.conninfo = url;
	opts.application_name = "test_db_outage";
	db = db_new(base, &opts);
	run(db, &o, "SELECT 1", 0, NULL, 15000);
	CHECK(o.status == DB_OK && !o.down && !db_down(db), "the pool connects (%s)", o.error);
	/* Both connections up first, so the outage ends each of them rather than one still starting. */
	CHECK(admin_wait(admin_url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'test_db_outage'",
			 "2", 10000),
	      "both connections are up");
	free(admin(admin_url, "ALTER DATABASE t_db_outage ALLOW_CONNECTIONS false"));
	free(admin(admin_url, "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
			      " WHERE datname = 't_db_outage'"));
	CHECK(wait_down(db, true, 5000), "the pool finds the database down");
	start = now_ms();
	run(db, &o, "SELECT 1", 0, NULL, 15000);
	took = now_ms() - start;
	CHECK(o.done && o.status == DB_UNAVAILABLE && o.down, "a statement in the outage is DB_UNAVAILABLE, down");
	CHECK(took < 100, "at once (%ld ms)", took);
	CHECK(strstr(o.error, "not currently accepting connections") != NULL, "saying why: %s", o.error);
	CHECK(!db_ready(db), "db_ready is false");

	free(admin(admin_url, "ALTER DATABASE t_db_outage ALLOW_CONNECTIONS true"));
	CHECK(wait_down(db, false, 35000) && db_ready(db), "the pool reconnects when the database is back");
	run(db, &o, "SELECT 1", 0, NULL, 5000);
	CHECK(o.status == DB_OK && !o.down, "and statements run again (%s)", o.error);
	outcome_reset(&o);
	db_free(db);
	free(url);
	free(dead);
}

static void test_invalid_conninfo(void)
{
	struct db_opts opts = { .conninfo = "host=127.0.0.1 no_such_option=1" };
	struct db *db = db_new(base, &opts);
	struct outcome o = { 0 };

	run(db, &o, "SELECT 1", 0, NULL, 2000);
	CHECK(o.done && o.status == DB_UNAVAILABLE, "a bad connection string gives DB_UNAVAILABLE at once");
	CHECK(strstr(o.error, "invalid connection string") != NULL, "saying so: %s", o.error);
	outcome_reset(&o);
	db_free(db);
}

static void test_free_with_queue(const char *url)
{
	char *dead = xasprintf("postgresql://postgres@127.0.0.1:%d/none", closed_port());
	struct db_opts opts = { .conninfo = dead, .pool_size = 1 };
	struct db_opts live = { .conninfo = url, .pool_size = 1, .application_name = "test_db_free" };
	struct outcome q[5] = { 0 }, ok = { 0 }, busy[4] = { 0 };
	struct db *db = db_new(base, &opts);

	for (int i = 0; i < 5; i++)
		query(db, "SELECT 1", 0, NULL, on_result, &q[i]);
	run_for(100);
	db_free(db);
	CHECK_INT(count_unavailable(q, 5, "shutting down"), 5,
		  "db_free runs every queued callback with DB_UNAVAILABLE \"shutting down\"");

	db = db_new(base, &live);
	run(db, &ok, "SELECT 1", 0, NULL, 15000);
	CHECK(ok.status == DB_OK, "a one-connection pool connects");
	for (int i = 0; i < 4; i++)
		query(db, i == 0 ? "SELECT pg_sleep(30)" : "SELECT 1", 0, NULL, on_result, &busy[i]);
	run_for(200);
	db_free(db);
	CHECK_INT(count_unavailable(busy, 4, ""), 4, "db_free ends the statement in flight and the queued ones");
	outcome_reset(&ok);
	free(dead);
}

/* Callbacks may call db_query() and db_free(). */
struct reentry {
	struct db *db;
	int chain;
	int after_free;
	bool freed;
	bool done;
};

static void on_after_free(const struct db_result *r, void *arg)
{
	struct reentry *re = arg;

	re->after_free++;
}

static void on_freeing(const struct db_result *r, void *arg)
{
	struct reentry *re = arg;

	re->freed = true;
	db_free(re->db);
	re->db = NULL;
}

static void on_chain(const struct db_result *r, void *arg)
{
	struct reentry *re = arg;

	if (r->status == DB_OK && ++re->chain < 3) {
		db_query(re->db, "SELECT 1", 0, NULL, on_chain, re);
		return;
	}
	re->done = true;
}

static void test_reentry(const char *url)
{
	struct db_opts opts = { .conninfo = url, .pool_size = 2, .application_name = "test_db_reentry" };
	struct reentry re = { .db = db_new(base, &opts) };
	long start = now_ms();

	db_query(re.db, "SELECT 1", 0, NULL, on_chain, &re);
	testenv_run_until(base, &re.done, 15000);
	CHECK_INT(re.chain, 3, "a callback can queue the next statement");

	/* The first answer frees the pool; the rest must still be called, once. */
	db_query(re.db, "SELECT 1", 0, NULL, on_freeing, &re);
	for (int i = 0; i < 5; i++)
		db_query(re.db, "SELECT pg_sleep(0.2)", 0, NULL, on_after_free, &re);
	while (!re.freed && now_ms() - start < 30000)
		event_base_loop(base, EVLOOP_ONCE);
	CHECK(re.freed, "db_free() from inside a callback");
	CHECK_INT(re.after_free, 5, "runs the remaining callbacks once each");
	run_for(300);
	CHECK_INT(re.after_free, 5, "and nothing runs after it");
}

int main(void)
{
	char *url = testenv_database("db");
	struct db_opts opts = { .conninfo = url, .application_name = "test_db", .pool_size = 4 };
	struct db *db;

	base = event_base_new();
	db = db_new(base, &opts);
	test_round_trip(db);
	test_prepared(db);
	test_thousand(db);
	test_statement_timeout(url);
	test_batched_reads(url);
	test_terminated(db, url);
	test_unreachable();
	test_fail_fast();
	test_invalid_conninfo();
	test_free_with_queue(url);
	test_reentry(url);
	db_free(db);
	db_free(NULL);
	event_base_free(base);
	free(url);
	metrics_shutdown();
	return tap_done();
}
