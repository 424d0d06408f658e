/*
 * topology: declarations of the project's exchanges, queues and bindings
 * (see topology.h). Each queue's arguments are built in exactly one
 * function below, whichever service declares it.
 */
#include "topology.h"

#define TOPO_COUNT(a) (sizeof(a) / sizeof(*(a)))

/* 5 s .. 10 min, 1130 s in all: a Google or database outage of minutes loses nothing. */
static const long scheduler_retry_ttl_ms[] = { 5000, 15000, 30000, 60000, 120000, 300000, 600000 };
static const char *const scheduler_retry_queues[] = {
	"scheduler.retry.1", "scheduler.retry.2", "scheduler.retry.3", "scheduler.retry.4",
	"scheduler.retry.5", "scheduler.retry.6", "scheduler.retry.7",
};

/* 10 s .. 10 min, 1120 s in all. */
static const long mailer_retry_ttl_ms[] = { 10000, 30000, 60000, 120000, 300000, 600000 };
static const char *const mailer_retry_queues[] = {
	"mailer.retry.1", "mailer.retry.2", "mailer.retry.3", "mailer.retry.4", "mailer.retry.5", "mailer.retry.6",
};

_Static_assert(TOPO_COUNT(scheduler_retry_ttl_ms) == TOPO_COUNT(scheduler_retry_queues), "one name per tier");
_Static_assert(TOPO_COUNT(mailer_retry_ttl_ms) == TOPO_COUNT(mailer_retry_queues), "one name per tier");

/*
 * A quorum work queue that dead-letters at least once to dlx/dlrk.
 * ttl_ms < 0 means no x-message-ttl. Queues with no consumer (the delay
 * queue, the tiers) keep the delivery limit too, so an operator's tool
 * reading them cannot loop a message forever.
 */
static int topo_work_queue(struct mq *mq, const char *name, long ttl_ms, const char *dlx, const char *dlrk)
{
	struct mq_arg args[7];
	size_t n = 0;

	args[n++] = MQ_ARG_S("x-queue-type", "quorum");
	args[n++] = MQ_ARG_S("x-dead-letter-exchange", dlx);
	args[n++] = MQ_ARG_S("x-dead-letter-routing-key", dlrk);
	args[n++] = MQ_ARG_S("x-dead-letter-strategy", "at-least-once");
	args[n++] = MQ_ARG_S("x-overflow", "reject-publish");
	args[n++] = MQ_ARG_I("x-delivery-limit", TOPO_DELIVERY_LIMIT);
	if (ttl_ms >= 0)
		args[n++] = MQ_ARG_I("x-message-ttl", ttl_ms);
	return mq_declare_queue(mq, name, args, n);
}

/* A parking queue: quorum, no TTL, no limit, no dead-lettering; only an operator empties it. */
static int topo_dead_queue(struct mq *mq, const char *name)
{
	struct mq_arg args[] = { MQ_ARG_S("x-queue-type", "quorum") };

	return mq_declare_queue(mq, name, args, TOPO_COUNT(args));
}

static int topo_tiers(struct mq *mq, const char *const *queues, const long *ttl_ms, size_t n, const char *target)
{
	for (size_t i = 0; i < n; i++)
		if (topo_work_queue(mq, queues[i], ttl_ms[i], "", target) < 0)
			return -1;
	return 0;
}

/* leads → scheduler.delay (TTL) → scheduler / lead.ready → scheduler.leads, dead letters to scheduler.dead. */
static int topo_delay_path(struct mq *mq, long delay_ms)
{
	if (mq_declare_exchange(mq, TOPO_EX_LEADS, "topic") < 0 ||
	    mq_declare_exchange(mq, TOPO_EX_SCHEDULER, "direct") < 0 ||
	    topo_dead_queue(mq, TOPO_Q_SCHEDULER_DEAD) < 0 ||
	    topo_work_queue(mq, TOPO_Q_SCHEDULER_LEADS, -1, "", TOPO_Q_SCHEDULER_DEAD) < 0 ||
	    mq_bind(mq, TOPO_Q_SCHEDULER_LEADS, TOPO_EX_SCHEDULER, TOPO_RK_LEAD_READY) < 0 ||
	    topo_work_queue(mq, TOPO_Q_SCHEDULER_DELAY, delay_ms, TOPO_EX_SCHEDULER, TOPO_RK_LEAD_READY) < 0 ||
	    mq_bind(mq, TOPO_Q_SCHEDULER_DELAY, TOPO_EX_LEADS, TOPO_RK_LEAD_ANALYZED) < 0)
		return -1;
	return 0;
}

static int topo_commands(struct mq *mq)
{
	static const char *const keys[] = { TOPO_RK_MEETING_CREATE, TOPO_RK_MEETING_RESCHEDULE, TOPO_RK_MEETING_CANCEL };

	if (mq_declare_exchange(mq, TOPO_EX_CALENDAR_COMMANDS, "direct") < 0 ||
	    topo_dead_queue(mq, TOPO_Q_SCHEDULER_DEAD) < 0 ||
	    topo_work_queue(mq, TOPO_Q_SCHEDULER_COMMANDS, -1, "", TOPO_Q_SCHEDULER_DEAD) < 0)
		return -1;
	for (size_t i = 0; i < TOPO_COUNT(keys); i++)
		if (mq_bind(mq, TOPO_Q_SCHEDULER_COMMANDS, TOPO_EX_CALENDAR_COMMANDS, keys[i]) < 0)
			return -1;
	return 0;
}

/* mail → mailer.jobs, whose dead letters go to mailer.dead (declared first: a missing target drops them). */
static int topo_mail(struct mq *mq)
{
	if (mq_declare_exchange(mq, TOPO_EX_MAIL, "topic") < 0 ||
	    topo_dead_queue(mq, TOPO_Q_MAILER_DEAD) < 0 ||
	    topo_work_queue(mq, TOPO_Q_MAILER_JOBS, -1, "", TOPO_Q_MAILER_DEAD) < 0 ||
	    mq_bind(mq, TOPO_Q_MAILER_JOBS, TOPO_EX_MAIL, TOPO_RK_MAIL_ALL) < 0)
		return -1;
	return 0;
}

int topology_declare_scheduler(struct mq *mq, long delay_ms)
{
	if (topo_delay_path(mq, delay_ms) < 0 ||
	    topo_tiers(mq, scheduler_retry_queues, scheduler_retry_ttl_ms, TOPO_COUNT(scheduler_retry_queues),
		       TOPO_Q_SCHEDULER_LEADS) < 0 ||
	    topo_commands(mq) < 0 ||
	    topo_mail(mq) < 0)
		return -1;
	return 0;
}

int topology_declare_mailer(struct mq *mq)
{
	if (topo_mail(mq) < 0 ||
	    topo_tiers(mq, mailer_retry_queues, mailer_retry_ttl_ms, TOPO_COUNT(mailer_retry_queues),
		       TOPO_Q_MAILER_JOBS) < 0)
		return -1;
	return 0;
}

int topology_declare_gateway(struct mq *mq)
{
	return topo_commands(mq);
}

int topology_declare_webhook_side(struct mq *mq, long delay_ms)
{
	return topo_delay_path(mq, delay_ms);
}

size_t topology_scheduler_retry_tiers(const long **ttl_ms)
{
	if (ttl_ms != NULL)
		*ttl_ms = scheduler_retry_ttl_ms;
	return TOPO_COUNT(scheduler_retry_ttl_ms);
}

size_t topology_mailer_retry_tiers(const long **ttl_ms)
{
	if (ttl_ms != NULL)
		*ttl_ms = mailer_retry_ttl_ms;
	return TOPO_COUNT(mailer_retry_ttl_ms);
}

const char *topology_scheduler_retry_queue(size_t n)
{
	return n >= 1 && n <= TOPO_COUNT(scheduler_retry_queues) ? scheduler_retry_queues[n - 1] : NULL;
}

const char *topology_mailer_retry_queue(size_t n)
{
	return n >= 1 && n <= TOPO_COUNT(mailer_retry_queues) ? mailer_retry_queues[n - 1] : NULL;
}

void topology_scheduler_retry_policy(struct retry_policy *policy)
{
	policy->tiers = scheduler_retry_queues;
	policy->ttl_ms = scheduler_retry_ttl_ms;
	policy->ntiers = TOPO_COUNT(scheduler_retry_queues);
	policy->dead_queue = TOPO_Q_SCHEDULER_DEAD;
}

void topology_mailer_retry_policy(struct retry_policy *policy)
{
	policy->tiers = mailer_retry_queues;
	policy->ttl_ms = mailer_retry_ttl_ms;
	policy->ntiers = TOPO_COUNT(mailer_retry_queues);
	policy->dead_queue = TOPO_Q_MAILER_DEAD;
}
