/*
 * scheduler-worker: turns analysed leads into Google Calendar meetings.
 *
 * The only writer to Google Calendar. It consumes lead.analyzed messages
 * after the broker-side delay (scheduler.leads), the gateway's meeting
 * commands (scheduler.commands) and requests to sync a user's calendar
 * (scheduler.sync), runs the reminder sweep and the sync sweep, and keeps
 * push channels open on the users' calendars. Each delivery is a job on
 * the one event loop; the prefetch bounds how many run at once, and each
 * job acks its delivery only after its effect is durable.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "db.h"
#include "google.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "scheduler.h"
#include "tokens.h"
#include "topology.h"
#include "vault.h"
#include "worker.h"
#include "xmalloc.h"

/* Jobs in flight per consumer by default: enough to keep many Google calls overlapping. */
#define SCHEDULER_PREFETCH 64

static struct scheduler scheduler;

int64_t scheduler_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void scheduler_job_done(struct scheduler *s, struct mq_delivery *d)
{
	mq_delivery_free(d);
	s->in_flight--;
}

bool scheduler_closing(const struct scheduler *s)
{
	return worker_closing(s->env.worker);
}

static void scheduler_on_lead(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	struct scheduler *s = arg;
	struct mq_delivery *copy = mq_delivery_dup(d);

	(void)mq;
	s->in_flight++;
	/* Retried commands come back through the lead queue (the retry tiers lead there). */
	if (d->msg.type != NULL && strcmp(d->msg.type, "meeting.command") == 0)
		command_handle(s, copy);
	else
		lead_handle(s, copy);
}

static void scheduler_on_command(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	struct scheduler *s = arg;

	(void)mq;
	s->in_flight++;
	command_handle(s, mq_delivery_dup(d));
}

static void scheduler_on_sync(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	struct scheduler *s = arg;

	(void)mq;
	s->in_flight++;
	sync_handle(s, mq_delivery_dup(d));
}

static int scheduler_on_consumer_connect(struct mq *mq, void *arg)
{
	struct scheduler *s = arg;
	uint16_t prefetch = (uint16_t)(s->env.cfg->prefetch ? s->env.cfg->prefetch : SCHEDULER_PREFETCH);

	if (topology_declare_scheduler(mq, s->env.cfg->schedule_delay_ms) < 0 ||
	    mq_consume(mq, TOPO_Q_SCHEDULER_LEADS, prefetch, false, scheduler_on_lead, s) < 0 ||
	    mq_consume(mq, TOPO_Q_SCHEDULER_COMMANDS, prefetch, false, scheduler_on_command, s) < 0 ||
	    mq_consume(mq, TOPO_Q_SCHEDULER_SYNC, prefetch, false, scheduler_on_sync, s) < 0)
		return -1;
	return 0;
}

static int scheduler_on_publisher_connect(struct mq *mq, void *arg)
{
	struct scheduler *s = arg;

	return topology_declare_scheduler(mq, s->env.cfg->schedule_delay_ms);
}

static unsigned scheduler_in_flight(void *arg)
{
	struct scheduler *s = arg;

	return s->in_flight + sweep_in_flight(s->sweep) + channels_in_flight(s->channels) +
	       sync_in_flight(s->syncer);
}

static void scheduler_on_stop(void *arg)
{
	struct scheduler *s = arg;

	sweep_stop(s->sweep);
	channels_stop(s->channels);
	sync_stop(s->syncer);
}

/* After the HTTP client and the pool have ended: nothing can call into these any more (lib/worker.h). */
static void scheduler_on_free(void *arg)
{
	struct scheduler *s = arg;

	sweep_free(s->sweep);
	channels_free(s->channels);
	sync_free(s->syncer);
	tokens_free(s->tokens);
	ratelimit_free(s->rate);
	google_free(s->google);
	vault_free(s->vault);
}

int main(void)
{
	struct scheduler *s = &scheduler;
	struct worker_opts opts = {
		.name = "scheduler-worker",
		.cfg_groups = CFG_GOOGLE_CALENDAR | CFG_VAULT | CFG_SCHEDULING,
		.default_metrics_addr = "127.0.0.1:9101",
		.db_pool_size = 8,
		.on_consumer_connect = scheduler_on_consumer_connect,
		.on_publisher_connect = scheduler_on_publisher_connect,
		.in_flight = scheduler_in_flight,
		.on_stop = scheduler_on_stop,
		.on_free = scheduler_on_free,
		.arg = s,
	};
	struct retry_policy policy;
	char *err = NULL;
	int status;

	topology_scheduler_retry_policy(&policy);
	worker_env_init(&s->env, worker_new(&opts), &policy);
	s->vault = vault_new(s->env.cfg->token_encryption_key, &err);
	s->google = google_new(worker_http(s->env.worker), s->env.cfg);
	s->rate = ratelimit_new((double)s->env.cfg->google_user_qps, (double)s->env.cfg->google_user_qps);
	s->tokens = tokens_new(s);
	s->leads_consumed = metrics_counter("scheduler_leads_consumed_total", "lead.analyzed messages handled.", NULL);
	s->meetings_created = metrics_counter("scheduler_meetings_total", "Meetings changed, by action.", "action",
					      "created", NULL);
	s->meetings_rescheduled = metrics_counter("scheduler_meetings_total", "Meetings changed, by action.", "action",
						  "rescheduled", NULL);
	s->meetings_cancelled = metrics_counter("scheduler_meetings_total", "Meetings changed, by action.", "action",
						"cancelled", NULL);
	s->commands = metrics_counter("scheduler_commands_total", "Meeting commands handled.", NULL);
	s->sweep = sweep_start(s);
	s->channels = channels_start(s);
	s->syncer = sync_start(s);

	status = worker_run(s->env.worker);
	worker_free(s->env.worker);
	return status;
}
