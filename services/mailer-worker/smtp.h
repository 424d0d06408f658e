/*
 * smtp: one mail over SMTP through libcurl, on the event loop.
 *
 * Each mail is an easy handle driven by the process's curl multi handle
 * (httpc_add_easy), so nothing waits and curl reuses server connections
 * between mails; the handles themselves are reused too, set up once. smtp:// upgrades with STARTTLS when the server offers it,
 * and refuses to go on without it when SMTP_REQUIRE_TLS is set; smtps:// is
 * TLS from the start; AUTH happens only when SMTP_USER is set.
 *
 * The outcome sorts failures the way the retry tiers need: a 5xx answer to
 * the message itself (MAIL, RCPT, DATA or its end) is permanent; anything
 * else (4xx, no connection, TLS or AUTH trouble, timeouts) may pass, so it
 * is transient. The server's own reply line comes back as the detail.
 */
#ifndef MAILER_SMTP_H
#define MAILER_SMTP_H

#include "compose.h"

struct httpc;
struct config;

/* The longest one mail may take, connection included. */
#define SMTP_TIMEOUT_MS 60000L

enum smtp_outcome {
	SMTP_SENT,		/* the server answered 250 to the message */
	SMTP_TRANSIENT,		/* worth trying again later */
	SMTP_PERMANENT,		/* the server refused this message for good */
};

struct smtp_result {
	enum smtp_outcome outcome;
	const char *detail;	/* the failing reply or curl's explanation; NULL when sent */
	double seconds;		/* how long the transfer took */
};

/* *result lives only for the duration of the callback. */
typedef void (*smtp_done_cb)(const struct smtp_result *result, void *arg);

/*
 * Send mail to rcpt (a checked address) with envelope sender from (one too).
 * Returns 0 and calls done exactly once, later; or -1 (logged) when the
 * transfer could not start, and done is not called.
 */
int smtp_send(struct httpc *http, const struct config *cfg, const char *from, const char *rcpt,
	      const struct compose_mail *mail, smtp_done_cb done, void *arg);

/* Free the idle handles kept for reuse; after httpc_free(), at exit. */
void smtp_shutdown(void);

#endif
