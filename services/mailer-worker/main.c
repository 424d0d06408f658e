/*
 * mailer-worker: an email to the owner for every meeting action.
 *
 * Consumes mail jobs from mailer.jobs and sends them over SMTP through
 * libcurl on the event loop. Each delivery is a job (job.c); the consumer's
 * prefetch bounds how many run at once, and the graceful stop waits for the
 * ones in flight. This file only wires the process together.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <sodium.h>

#include "cfg.h"
#include "header.h"
#include "log.h"
#include "mailer.h"
#include "smtp.h"
#include "topology.h"
#include "worker.h"

/* Mails in flight at once unless PREFETCH says otherwise: SMTP servers throttle parallel sessions early. */
#define MAILER_PREFETCH 16

static struct mailer mailer;

bool mailer_closing(const struct mailer *m)
{
	return worker_closing(m->env.worker);
}

static void mailer_on_job(struct mq *mq, const struct mq_delivery *d, void *arg)
{
	struct mailer *m = arg;

	(void)mq;
	m->in_flight++;
	job_handle(m, mq_delivery_dup(d));
}

static int mailer_on_consumer_connect(struct mq *mq, void *arg)
{
	struct mailer *m = arg;
	uint16_t prefetch = (uint16_t)(m->env.cfg->prefetch ? m->env.cfg->prefetch : MAILER_PREFETCH);

	if (topology_declare_mailer(mq) < 0 ||
	    mq_consume(mq, TOPO_Q_MAILER_JOBS, prefetch, false, mailer_on_job, m) < 0)
		return -1;
	return 0;
}

static int mailer_on_publisher_connect(struct mq *mq, void *arg)
{
	(void)arg;
	return topology_declare_mailer(mq);
}

static unsigned mailer_in_flight(void *arg)
{
	const struct mailer *m = arg;

	return m->in_flight;
}

/* The sender from MAIL_FROM, stricter than cfg's check because it goes to the envelope as is. */
static void mailer_sender(struct mailer *m)
{
	char *name = NULL;

	if (header_parse_mailbox(m->env.cfg->mail_from, &name, &m->from_address) < 0) {
		log_error("invalid configuration", LOG_STR("variable", "MAIL_FROM"),
			  LOG_STR("problem", "must be one plain address, optionally as 'Name <address>'"));
		exit(EX_CONFIG);
	}
	m->from_header = header_mailbox(name, m->from_address);
	m->from_domain = m->from_address + strcspn(m->from_address, "@") + 1;
	free(name);
}

int main(void)
{
	struct mailer *m = &mailer;
	struct worker_opts opts = {
		.name = "mailer-worker",
		.cfg_groups = CFG_SMTP,
		.default_metrics_addr = "127.0.0.1:9102",
		.on_consumer_connect = mailer_on_consumer_connect,
		.on_publisher_connect = mailer_on_publisher_connect,
		.in_flight = mailer_in_flight,
		.arg = m,
	};
	struct retry_policy policy;
	int status;

	if (sodium_init() < 0) {
		log_error("libsodium failed to initialise");
		return 1;
	}
	topology_mailer_retry_policy(&policy);
	worker_env_init(&m->env, worker_new(&opts), &policy);
	m->http = worker_http(m->env.worker);
	mailer_sender(m);

	status = worker_run(m->env.worker);

	worker_free(m->env.worker);
	smtp_shutdown();
	free(m->from_address);
	free(m->from_header);
	return status;
}
