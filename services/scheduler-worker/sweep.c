/*
 * sweep: the scheduler's periodic work, safe with many workers running.
 *
 * Every SWEEP_PERIOD_S each worker (1) marks meetings whose end has passed
 * `completed`, (2) sends the reminder of every meeting starting within
 * REMINDER_BEFORE_MINUTES, and (3) sends the "calendar disconnected" mail of
 * users whose grant was revoked. (2) and (3) are outboxes: rows are claimed
 * with a short lease (FOR UPDATE SKIP LOCKED, so workers never take the same
 * row), the mail job is published, and the row is marked done only after the
 * broker confirmed it. A worker that dies in between leaves a lease that
 * expires; the next sweep publishes again under the same message_id, which
 * the mailer de-duplicates: one reminder, never two, never none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "scheduler.h"
#include "xmalloc.h"

#define SWEEP_PERIOD_S 30
#define SWEEP_BATCH "200"

static const char sweep_complete_sql[] =
	"UPDATE calendar_meetings SET status = 'completed' WHERE status = 'scheduled' AND meeting_end_time < now()";

/* Meetings booked inside the reminder window get no reminder: the owner was just told about them. */
static const char sweep_reminders_sql[] =
	"UPDATE calendar_meetings SET reminder_claimed_until = now() + interval '2 minutes'"
	" WHERE id IN (SELECT id FROM calendar_meetings WHERE status = 'scheduled' AND reminder_queued_at IS NULL"
	"  AND meeting_start_time > now() AND meeting_start_time <= now() + make_interval(mins => $1::int)"
	"  AND created_at <= meeting_start_time - make_interval(mins => $1::int)"
	"  AND (reminder_claimed_until IS NULL OR reminder_claimed_until < now())"
	"  ORDER BY meeting_start_time LIMIT " SWEEP_BATCH " FOR UPDATE SKIP LOCKED)"
	" RETURNING id, user_id, lead_analytics_id, ical_sequence";

enum { RC_ID, RC_USER, RC_LEAD, RC_SEQUENCE };

static const char sweep_reminded_sql[] =
	"UPDATE calendar_meetings SET reminder_queued_at = now() WHERE id = $1";

static const char sweep_disconnects_sql[] =
	"UPDATE users SET google_disconnect_claimed_until = now() + interval '2 minutes'"
	" WHERE id IN (SELECT id FROM users WHERE google_disconnected_at IS NOT NULL"
	"  AND google_disconnect_notified_at IS NULL AND google_disconnect_reason = 'grant_revoked'"
	"  AND (google_disconnect_claimed_until IS NULL OR google_disconnect_claimed_until < now())"
	"  LIMIT " SWEEP_BATCH " FOR UPDATE SKIP LOCKED)"
	" RETURNING id, EXTRACT(EPOCH FROM google_disconnected_at)::bigint";

enum { DC_USER, DC_DISCONNECTED_AT };

static const char sweep_notified_sql[] =
	"UPDATE users SET google_disconnect_notified_at = now()"
	" WHERE id = $1 AND EXTRACT(EPOCH FROM google_disconnected_at)::bigint = $2::bigint";

struct sweep {
	struct scheduler *s;
	struct event *timer;	/* the first sweep soon after start, then every SWEEP_PERIOD_S */
	unsigned pending;	/* queries and mail jobs of the current sweep still running */
	bool again;		/* kicked while running: run once more when done */
};

struct sweep_item {
	struct sweep *sw;
	char *id;
	char *stamp;		/* disconnects: the disconnect time that names the mail */
	bool reminder;
};

static void sweep_run(struct sweep *sw);

/* One query or mail job of the current sweep is done. */
static void sweep_settle(struct sweep *sw)
{
	if (--sw->pending == 0 && sw->again) {
		sw->again = false;
		sweep_run(sw);
	}
}

static void sweep_item_free(struct sweep_item *it)
{
	struct sweep *sw = it->sw;

	free(it->id);
	free(it->stamp);
	free(it);
	sweep_settle(sw);
}

static void sweep_on_marked(const struct db_result *r, void *arg)
{
	struct sweep_item *it = arg;

	/* Unmarked, the lease runs out and the mail is published again: the mailer drops the copy. */
	if (r->status != DB_OK)
		log_warn("could not mark a mail as queued", LOG_STR("id", it->id), LOG_STR("error", r->error));
	sweep_item_free(it);
}

static void sweep_on_published(enum mq_confirm outcome, void *arg)
{
	struct sweep_item *it = arg;

	if (outcome != MQ_CONFIRM_ACK) {
		log_warn("mail job not confirmed; the next sweep tries again", LOG_STR("id", it->id));
		sweep_item_free(it);
		return;
	}
	if (it->reminder) {
		const char *params[] = { it->id };

		db_query(it->sw->s->env.db, sweep_reminded_sql, 1, params, sweep_on_marked, it);
	} else {
		const char *params[] = { it->id, it->stamp };

		db_query(it->sw->s->env.db, sweep_notified_sql, 2, params, sweep_on_marked, it);
	}
}

/*
 * A claimed batch: each row becomes a mail job counted in pending, and the
 * query's own count (taken in sweep_run) is settled only after the loop, so
 * a publish that fails at once cannot end the sweep halfway through it.
 */
static void sweep_on_reminders(const struct db_result *r, void *arg)
{
	struct sweep *sw = arg;

	for (int i = 0; r->status == DB_OK && i < db_ntuples(r); i++) {
		struct sweep_item *it = xcalloc(1, sizeof(*it));
		struct mailjob mail = { .kind = "reminder" };

		it->sw = sw;
		it->id = xstrdup(db_value(r, i, RC_ID));
		it->reminder = true;
		sw->pending++;
		mail.user_id = db_value(r, i, RC_USER);
		mail.meeting_id = it->id;
		mail.lead_analytics_id = db_value(r, i, RC_LEAD);
		mail.sequence = atoi(db_value(r, i, RC_SEQUENCE));
		metric_inc(metrics_counter("scheduler_reminders_total", "Reminder mail jobs published.", NULL));
		mailjob_publish(sw->s, &mail, sweep_on_published, it);
	}
	sweep_settle(sw);
}

/* As sweep_on_reminders(), for the "calendar disconnected" mails. */
static void sweep_on_disconnects(const struct db_result *r, void *arg)
{
	struct sweep *sw = arg;

	for (int i = 0; r->status == DB_OK && i < db_ntuples(r); i++) {
		struct sweep_item *it = xcalloc(1, sizeof(*it));
		struct mailjob mail = { .kind = "disconnected", .reason = "grant_revoked" };

		it->sw = sw;
		it->id = xstrdup(db_value(r, i, DC_USER));
		it->stamp = xstrdup(db_value(r, i, DC_DISCONNECTED_AT));
		sw->pending++;
		mail.user_id = it->id;
		mail.disconnected_at = atoll(it->stamp);
		mailjob_publish(sw->s, &mail, sweep_on_published, it);
	}
	sweep_settle(sw);
}

static void sweep_on_completed(const struct db_result *r, void *arg)
{
	if (r->status == DB_OK && r->res != NULL && atoi(PQcmdTuples(r->res)) > 0)
		metric_add(metrics_counter("scheduler_meetings_completed_total", "Meetings marked completed.", NULL),
			   atoi(PQcmdTuples(r->res)));
	sweep_settle(arg);
}

static void sweep_run(struct sweep *sw)
{
	struct scheduler *s = sw->s;
	char minutes[24];
	const char *params[1] = { minutes };

	/* One sweep at a time per process; a slow database makes sweeps rarer, not piled up. */
	if (sw->pending > 0) {
		sw->again = true;
		return;
	}
	if (!mq_ready(s->env.publisher))
		return;
	sw->pending = 2;
	db_query(s->env.db, sweep_complete_sql, 0, NULL, sweep_on_completed, sw);
	db_query(s->env.db, sweep_disconnects_sql, 0, NULL, sweep_on_disconnects, sw);
	if (s->env.cfg->reminder_before_minutes > 0) {
		snprintf(minutes, sizeof(minutes), "%ld", s->env.cfg->reminder_before_minutes);
		sw->pending++;
		db_query(s->env.db, sweep_reminders_sql, 1, params, sweep_on_reminders, sw);
	}
}

static void sweep_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sweep *sw = arg;
	struct timeval period = { SWEEP_PERIOD_S, 0 };

	(void)fd;
	(void)what;
	event_add(sw->timer, &period);
	sweep_run(sw);
}

struct sweep *sweep_start(struct scheduler *s)
{
	struct sweep *sw = xcalloc(1, sizeof(*sw));

	sw->s = s;
	/* A first sweep right after start, so a restarted worker catches up at once; then every period. */
	sw->timer = xevent_new(s->env.base, -1, 0, sweep_on_timer, sw);
	event_add(sw->timer, &(struct timeval){ 1, 0 });
	return sw;
}

void sweep_kick(struct sweep *sw)
{
	sweep_run(sw);
}

void sweep_stop(struct sweep *sw)
{
	if (sw != NULL && sw->timer != NULL) {
		event_free(sw->timer);
		sw->timer = NULL;
	}
}

unsigned sweep_in_flight(const struct sweep *sw)
{
	return sw != NULL ? sw->pending : 0;
}

void sweep_free(struct sweep *sw)
{
	if (sw == NULL)
		return;
	sweep_stop(sw);
	free(sw);
}
