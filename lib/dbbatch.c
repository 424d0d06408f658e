/*
 * dbbatch: reads from db_read() sent together as one libpq pipeline, part
 * of the db pool (see db-int.h for how its parts fit together).
 *
 * Whenever a connection turns idle, db_pump() offers it the queue: the
 * reads from db_read() queued right behind a read at the head (its share
 * of the queue, at most DB_MAX_BATCH) whose statements are prepared on
 * that connection go to it as one pipeline with one Sync. Batches form
 * only when queries wait, so an unloaded service sends each statement at
 * once. Under load this is one send and one receive here, and one of each
 * in the server, for a whole batch of requests instead of for each: the
 * gateway's status and list reads are such a batch.
 *
 * The server runs a pipeline in one implicit transaction and skips what
 * follows a failed statement: each read gets its own answer, and those
 * that did not run (skipped, or their prepared statement went stale) go
 * back to the head of the queue in their order, to be sent again.
 */
#include "db-int.h"

#include "metrics.h"
#include "xmalloc.h"

/* Reads sent together in one pipeline at most (see dbbatch_send()). */
#define DB_MAX_BATCH	64

/* Put the batch's reads that never ran back at the head of the queue, in their order. */
static bool dbbatch_requeue_aborted(struct db_conn *conn)
{
	struct db *db = conn->db;

	if (conn->aborted.head == NULL)
		return false;
	conn->aborted.tail->next = db->waiting.head;
	if (db->waiting.head == NULL)
		db->waiting.tail = conn->aborted.tail;
	db->waiting.head = conn->aborted.head;
	db->waiting.n += conn->aborted.n;
	conn->aborted.head = conn->aborted.tail = NULL;
	conn->aborted.n = 0;
	return true;
}

/* The prepared statement q may run as in a batch on conn, or -1: a read whose statement is prepared there. */
static int dbbatch_batchable(const struct db_conn *conn, const struct db_query *q)
{
	return q != NULL && q->read_only ? dbstmt_find(conn, q->sql) : -1;
}

/*
 * Send the reads at the head of the queue (two or more, at most max, see
 * dbbatch_send()) as one pipeline: their executions and a single Sync go
 * out in one write, and the server runs them in one implicit transaction
 * and answers them all in one reply.
 */
static void dbbatch_send_pipeline(struct db_conn *conn, int max)
{
	struct db *db = conn->db;

	conn->state = DB_CONN_BUSY;
	if (!PQenterPipelineMode(conn->pg)) {
		db_conn_lost(conn, PQerrorMessage(conn->pg));
		return;
	}
	for (int n = 0, i; n < max && (i = dbbatch_batchable(conn, db->waiting.head)) >= 0; n++) {
		struct db_query *q = db_list_pop(&db->waiting);

		q->batched_as = i;
		db_list_push(&conn->batch, q);
		if (!dbstmt_send_prepared(conn, q, i)) {
			db_conn_lost(conn, PQerrorMessage(conn->pg));
			return;
		}
	}
	metric_add(db->statements, conn->batch.n);
	metric_inc(db->round_trips);
	/* libpq 15's PQpipelineSync flushes: it is the batch's one write. */
	if (!PQpipelineSync(conn->pg)) {
		db_conn_lost(conn, PQerrorMessage(conn->pg));
		return;
	}
	db_conn_sent(conn);
}

bool dbbatch_send(struct db_conn *conn)
{
	struct db *db = conn->db;
	int share;

	/*
	 * A batch runs serially in one backend: a connection takes only
	 * its share of the queue, so the others (and the server's other
	 * cores) get theirs as they come free.
	 */
	share = (db->waiting.n + db->nup - 1) / db->nup;
	if (share > DB_MAX_BATCH)
		share = DB_MAX_BATCH;
	if (share < 2 || dbbatch_batchable(conn, db->waiting.head) < 0 ||
	    dbbatch_batchable(conn, db->waiting.head->next) < 0)
		return false;
	dbbatch_send_pipeline(conn, share);
	return true;
}

bool dbbatch_end(struct db_conn *conn, const char *error)
{
	struct db_query *q;

	while ((q = db_list_pop(&conn->batch)) != NULL)
		db_fail(conn->db, q, DB_UNAVAILABLE, NULL, xstrdup(error));
	return dbbatch_requeue_aborted(conn);
}

/*
 * One read of the batch has all its results: hand it over, or put it aside
 * for the queue when it did not run (an earlier read failed, which aborts
 * the rest of the pipeline, or its prepared statement went stale).
 */
static void dbbatch_done_one(struct db_conn *conn)
{
	struct db_query *q = db_list_pop(&conn->batch);
	PGresult *res = conn->res;
	bool aborted;

	conn->res = NULL;
	aborted = res != NULL && PQresultStatus(res) == PGRES_PIPELINE_ABORTED;
	if (!aborted && !dbstmt_retire_if_stale(conn, q->batched_as, q, res)) {
		db_complete(conn->db, q, res);
		return;
	}
	PQclear(res);
	db_list_push(&conn->aborted, q);
}

/*
 * The pipeline's Sync came back: every read of the batch is answered or
 * set aside, and the connection leaves pipeline mode until the next batch.
 */
static void dbbatch_synced(struct db_conn *conn)
{
	if (conn->batch.head != NULL || !PQexitPipelineMode(conn->pg)) {
		db_conn_lost(conn, conn->batch.head != NULL ? "the server answered fewer statements than were sent"
							    : PQerrorMessage(conn->pg));
		return;
	}
	db_conn_idle(conn);
	dbbatch_requeue_aborted(conn);
	db_pump(conn->db);
}

void dbbatch_collect(struct db_conn *conn)
{
	while (!PQisBusy(conn->pg)) {
		PGresult *res = PQgetResult(conn->pg);

		if (res == NULL) {
			/* The end of one statement's results. */
			if (PQstatus(conn->pg) != CONNECTION_OK || conn->batch.head == NULL) {
				db_conn_lost(conn, PQstatus(conn->pg) != CONNECTION_OK ? PQerrorMessage(conn->pg)
						   : "the server answered more statements than were sent");
				return;
			}
			dbbatch_done_one(conn);
			continue;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			dbbatch_synced(conn);
			return;
		}
		/* One statement gives one result; should there be more, the first wins. */
		if (conn->res == NULL)
			conn->res = res;
		else
			PQclear(res);
	}
	if (PQstatus(conn->pg) != CONNECTION_OK)
		db_conn_lost(conn, PQerrorMessage(conn->pg));
}
