/*
 * smtp: sending one composed mail with libcurl (see smtp.h).
 */
#include "smtp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define SMTP_CONNECT_TIMEOUT_MS 10000L
#define SMTP_REPLY_MAX 300
/* Idle handles kept for the next mails; more than the mails in flight at once only costs memory. */
#define SMTP_POOL_MAX 64

/*
 * One transfer. Its easy handle outlives it: once the mail is done, the
 * handle (with everything that is the same for every mail already set on it,
 * and curl's buffers already allocated) waits in smtp_pool for the next one,
 * so a mail costs no curl_easy_init(), option setup and buffer allocation.
 */
struct smtp_send {
	struct smtp_send *next;		/* in smtp_pool */
	CURL *easy;
	struct compose *compose;
	struct curl_slist *rcpt;
	char *envelope_from;
	smtp_done_cb done;
	void *arg;
	char error[CURL_ERROR_SIZE];
	char failure[SMTP_REPLY_MAX];	/* the last 4xx/5xx reply line */
};

static struct smtp_send *smtp_pool;
static unsigned smtp_pool_len;

static void smtp_send_free(struct smtp_send *s)
{
	if (s->easy != NULL)
		curl_easy_cleanup(s->easy);
	compose_free(s->compose);
	curl_slist_free_all(s->rcpt);
	free(s->envelope_from);
	free(s);
}

/*
 * A finished transfer's handle back to the pool: this mail's parts and
 * recipient are taken off it first (curl touches the old MIME tree when the
 * next one is set, so it must not be freed while still attached).
 */
static void smtp_send_release(struct smtp_send *s)
{
	if (smtp_pool_len >= SMTP_POOL_MAX ||
	    curl_easy_setopt(s->easy, CURLOPT_MIMEPOST, (curl_mime *)NULL) != CURLE_OK ||
	    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL) != CURLE_OK ||
	    curl_easy_setopt(s->easy, CURLOPT_MAIL_RCPT, (struct curl_slist *)NULL) != CURLE_OK) {
		smtp_send_free(s);
		return;
	}
	compose_free(s->compose);
	s->compose = NULL;
	curl_slist_free_all(s->rcpt);
	s->rcpt = NULL;
	s->done = NULL;
	s->arg = NULL;
	s->next = smtp_pool;
	smtp_pool = s;
	smtp_pool_len++;
}

void smtp_shutdown(void)
{
	while (smtp_pool != NULL) {
		struct smtp_send *s = smtp_pool;

		smtp_pool = s->next;
		smtp_send_free(s);
	}
	smtp_pool_len = 0;
}

/* curl hands every server reply line to the header callback: keep the last refusal. */
static size_t smtp_on_reply(char *data, size_t size, size_t nmemb, void *arg)
{
	struct smtp_send *s = arg;
	size_t len = size * nmemb, n = len;

	if (len >= 3 && (data[0] == '4' || data[0] == '5') && isdigit((unsigned char)data[1]) &&
	    isdigit((unsigned char)data[2])) {
		while (n > 0 && (data[n - 1] == '\r' || data[n - 1] == '\n'))
			n--;
		if (n >= sizeof(s->failure))
			n = sizeof(s->failure) - 1;
		memcpy(s->failure, data, n);
		s->failure[n] = '\0';
		/* A reply is a server's text, not ours: no control may reach a log line or header through it. */
		for (char *p = s->failure; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
				*p = ' ';
	}
	return len;
}

static enum smtp_outcome smtp_classify(CURLcode result, long code, const char *error)
{
	if (result == CURLE_OK)
		return SMTP_SENT;
	if (code / 100 != 5)
		return SMTP_TRANSIENT;
	/* MAIL, RCPT and DATA refusals; a refusal after the data ends is the only one curl gives no text. */
	if (result == CURLE_SEND_ERROR || (result == CURLE_WEIRD_SERVER_REPLY && error[0] == '\0'))
		return SMTP_PERMANENT;
	return SMTP_TRANSIENT;
}

static void smtp_on_done(CURL *easy, CURLcode result, void *arg)
{
	struct smtp_send *s = arg;
	struct smtp_result r = { 0 };
	curl_off_t us = 0;
	long code = 0, connects = 0;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
	/* 0 when the mail went over a connection already open (curl's cache in the multi handle). */
	if (curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
		metric_add(metrics_counter("mailer_smtp_connections_total",
					   "SMTP connections opened (a mail over a reused connection opens none).", NULL),
			   (double)connects);
	curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &us);
	r.seconds = (double)us / 1e6;
	r.outcome = smtp_classify(result, code, s->error);
	if (r.outcome != SMTP_SENT) {
		if (s->failure[0] != '\0')
			r.detail = s->failure;
		else if (s->error[0] != '\0')
			r.detail = s->error;
		else
			r.detail = curl_easy_strerror(result);
	}
	s->done(&r, s->arg);
	smtp_send_release(s);
}

/* What is the same for every mail: set once per handle. */
static bool smtp_setup(struct smtp_send *s, const struct config *cfg)
{
	CURL *e = s->easy;

	if (curl_easy_setopt(e, CURLOPT_URL, cfg->smtp_url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_USE_SSL, cfg->smtp_require_tls ? (long)CURLUSESSL_ALL
								       : (long)CURLUSESSL_TRY) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, SMTP_CONNECT_TIMEOUT_MS) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, SMTP_TIMEOUT_MS) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->error) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, smtp_on_reply) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HEADERDATA, s) != CURLE_OK)
		return false;
	if (cfg->smtp_user != NULL &&
	    (curl_easy_setopt(e, CURLOPT_USERNAME, cfg->smtp_user) != CURLE_OK ||
	     curl_easy_setopt(e, CURLOPT_PASSWORD, cfg->smtp_password) != CURLE_OK))
		return false;
	return true;
}

/* A handle from the pool, or a new one set up; NULL when curl refuses. */
static struct smtp_send *smtp_send_get(const struct config *cfg)
{
	struct smtp_send *s = smtp_pool;

	if (s != NULL) {
		smtp_pool = s->next;
		smtp_pool_len--;
		s->next = NULL;
		s->error[0] = '\0';
		s->failure[0] = '\0';
		return s;
	}
	s = xcalloc(1, sizeof(*s));
	s->easy = curl_easy_init();
	if (s->easy == NULL || !smtp_setup(s, cfg)) {
		smtp_send_free(s);
		return NULL;
	}
	return s;
}

int smtp_send(struct httpc *http, const struct config *cfg, const char *from, const char *rcpt,
	      const struct compose_mail *mail, smtp_done_cb done, void *arg)
{
	struct smtp_send *s = smtp_send_get(cfg);
	char *to;

	if (s == NULL) {
		log_error("curl refused the SMTP options (is libcurl built without SMTP?)");
		return -1;
	}
	s->done = done;
	s->arg = arg;
	/* The envelope sender is MAIL_FROM for every mail: set again only should it differ. */
	if (s->envelope_from == NULL || strlen(s->envelope_from) != strlen(from) + 2 ||
	    strncmp(s->envelope_from + 1, from, strlen(from)) != 0) {
		free(s->envelope_from);
		s->envelope_from = xasprintf("<%s>", from);
		if (curl_easy_setopt(s->easy, CURLOPT_MAIL_FROM, s->envelope_from) != CURLE_OK) {
			log_error("curl refused the SMTP options (is libcurl built without SMTP?)");
			smtp_send_free(s);
			return -1;
		}
	}
	to = xasprintf("<%s>", rcpt);
	s->rcpt = curl_slist_append(NULL, to);
	free(to);
	if (s->rcpt == NULL || curl_easy_setopt(s->easy, CURLOPT_MAIL_RCPT, s->rcpt) != CURLE_OK) {
		log_error("curl refused the SMTP options (is libcurl built without SMTP?)");
		smtp_send_free(s);
		return -1;
	}
	s->compose = compose_attach(s->easy, mail);
	if (s->compose == NULL) {
		smtp_send_free(s);
		return -1;
	}
	if (httpc_add_easy(http, s->easy, smtp_on_done, s) < 0) {
		log_error("could not start an SMTP transfer");
		smtp_send_free(s);
		return -1;
	}
	return 0;
}
