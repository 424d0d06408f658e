/*
 * mailer: state shared by the mailer-worker's modules.
 *
 * main.c wires the process (worker scaffolding, topology, consumer);
 * jobspec.c reads a job's body; job.c takes one mail job from delivery to
 * ack: de-duplication, loading, sending, recording, retry and dead letters;
 * content.c decides what a mail says (template.c fills the templates, ical.c
 * writes the calendar part, text.c makes untrusted text safe); compose.c
 * lays out the MIME message and header.c/rfc2047.c its headers;
 * smtp.c sends it. Every job is a chain of callbacks on the one event loop.
 */
#ifndef MAILER_H
#define MAILER_H

#include <stdbool.h>

#include "mq.h"
#include "retry.h"
#include "worker.h"

struct config;
struct db;
struct event_base;
struct httpc;
struct worker;

struct mailer {
	struct worker_env env;	/* cfg, base, db, consumer, publisher, retry (lib/worker.h) */
	struct httpc *http;
	unsigned in_flight;

	char *from_address;	/* the envelope sender, from MAIL_FROM */
	char *from_header;	/* the From: value */
	const char *from_domain;	/* inside from_address: the right side of Message-IDs */
};

/*
 * worker_closing(): callbacks that still arrive (curl transfers aborted,
 * queries failed by the shutdown) only release their job (lib/worker.h).
 */
bool mailer_closing(const struct mailer *m);

/* job.c: handle one delivery of mailer.jobs. Ownership of d passes; m->in_flight counts it until it is settled. */
void job_handle(struct mailer *m, struct mq_delivery *d);

#endif
