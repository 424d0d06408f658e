/*
 * testenv: what an integration test needs from the test run's real servers.
 *
 * tests/run starts one PostgreSQL and one RabbitMQ for the whole run and
 * exports where they are (TEST_PG_URL, TEST_AMQP_URL, TEST_RABBITMQ_API,
 * TEST_GOOGLE_URL, ...). Tests stay isolated by name: each gets its own
 * database, cloned from the migrated template, and its own RabbitMQ virtual
 * host. A test started without those variables fails loudly instead of
 * skipping, so a green run always means the checks ran.
 */
#ifndef TESTENV_H
#define TESTENV_H

#include <stdbool.h>

struct event_base;

/* The value of a TEST_* variable, or exit(1) naming it. Not to be freed. */
const char *testenv_require(const char *name);

/*
 * A fresh database "t_<name>" (dropped first if a previous run left it),
 * cloned from the template that holds every migration. Returns a libpq
 * connection URI the caller frees.
 */
char *testenv_database(const char *name);

/* A fresh virtual host "<name>" (deleted first); returns its AMQP URL, caller frees. */
char *testenv_vhost(const char *name);

/*
 * A broker user (made, or its password reset) with exactly these
 * permission regexes on vhost, which exists; returns its AMQP URL there,
 * caller frees.
 */
char *testenv_broker_user(const char *vhost, const char *user, const char *password, const char *configure,
			  const char *write, const char *read);

/* Run the loop until *done is true or timeout_ms passes; returns *done. */
bool testenv_run_until(struct event_base *base, const bool *done, int timeout_ms);

/*
 * GET a RabbitMQ management API path (e.g. "/queues/vhost/name"); returns the
 * body the caller frees, or NULL on failure.
 */
char *testenv_rabbit_get(const char *path);

#endif
