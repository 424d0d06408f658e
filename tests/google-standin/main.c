/*
 * google-standin: entry point. Reads the flags, binds a loopback address,
 * prints {"listening": "http://127.0.0.1:NNNN"} on stdout once it can take
 * requests (a harness reads the port from that line), and serves until
 * SIGTERM or SIGINT, after which it frees everything so leak checkers
 * stay quiet.
 */
#include "standin.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "log.h"
#include "tz.h"
#include "xmalloc.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: google-standin [--listen 127.0.0.1:PORT] [--client-id ID] [--client-secret SECRET]\n"
	           "                      [--redirect-uri URI]... [--auto-approve] [--email EMAIL]\n"
	           "                      [--timezone ZONE] [--access-token-ttl SECONDS]\n"
	           "PORT 0 picks a free port. Only loopback addresses (127.0.0.0/8, ::1) are accepted.\n");
}

/* "127.0.0.1:8080" or "[::1]:8080" into host (caller frees) and port; 0 or -1. */
static int parse_listen(const char *arg, char **host, int *port)
{
	const char *colon;
	long p;

	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		*host = xstrndup(arg + 1, (size_t)(close - arg - 1));
		colon = close + 1;
	} else {
		colon = strrchr(arg, ':');
		if (colon == NULL)
			return -1;
		*host = xstrndup(arg, (size_t)(colon - arg));
	}
	if (util_parse_long(colon + 1, 0, 65535, &p) < 0) {
		free(*host);
		*host = NULL;
		return -1;
	}
	*port = (int)p;
	return 0;
}

static int parse_flags(int argc, char **argv, char **listen)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"client-id", required_argument, NULL, 'c'},
	    {"client-secret", required_argument, NULL, 's'},
	    {"redirect-uri", required_argument, NULL, 'r'},
	    {"auto-approve", no_argument, NULL, 'a'},
	    {"email", required_argument, NULL, 'e'},
	    {"timezone", required_argument, NULL, 'z'},
	    {"access-token-ttl", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			free(*listen);
			*listen = xstrdup(optarg);
			break;
		case 'c':
			free(config.client_id);
			config.client_id = xstrdup(optarg);
			break;
		case 's':
			free(config.client_secret);
			config.client_secret = xstrdup(optarg);
			break;
		case 'r':
			config_add_redirect_uri(&config, optarg);
			break;
		case 'a':
			config.auto_approve = true;
			break;
		case 'e':
			if (!util_valid_email(optarg)) {
				fprintf(stderr, "google-standin: --email: not an email address: %s\n", optarg);
				return -1;
			}
			free(config.email);
			config.email = util_lower(optarg);
			break;
		case 'z':
			if (!tz_valid(optarg)) {
				fprintf(stderr, "google-standin: --timezone: unknown zone: %s\n", optarg);
				return -1;
			}
			free(config.timezone);
			config.timezone = xstrdup(optarg);
			break;
		case 't':
			if (util_parse_long(optarg, 1, 86400L * 365, &config.access_token_ttl) < 0) {
				fprintf(stderr, "google-standin: --access-token-ttl: not a number of seconds: %s\n",
				        optarg);
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return -1;
	}
	if (config.client_id[0] == '\0' || config.client_secret[0] == '\0') {
		fprintf(stderr, "google-standin: --client-id and --client-secret must not be empty\n");
		return -1;
	}
	return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	log_info("stopping", LOG_INT("signal", sig));
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	enum log_level level = LOG_INFO;
	const char *env_level = getenv("LOG_LEVEL");
	char *listen = xstrdup("127.0.0.1:0"), *host = NULL, *url = NULL;
	struct event_base *base = NULL;
	struct event *sigterm = NULL, *sigint = NULL;
	int port, rc = 1;

	if (env_level != NULL && log_level_parse(env_level, &level) < 0)
		level = LOG_INFO;
	log_init("google-standin", level);
	if (sodium_init() < 0) {
		fprintf(stderr, "google-standin: libsodium failed to initialise\n");
		free(listen);
		return 1;
	}
	config_init(&config);
	if (parse_flags(argc, argv, &listen) < 0)
		goto out;
	if (parse_listen(listen, &host, &port) < 0) {
		fprintf(stderr, "google-standin: --listen wants HOST:PORT, got %s\n", listen);
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (base == NULL || server_start(base, host, port, &url) < 0)
		goto out;
	store_init();
	grants_init();
	journal_init();
	freebusy_init();
	watch_init();
	faults_clear();
	admin_init(&config);
	sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	sigint = evsignal_new(base, SIGINT, on_signal, base);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	log_info("listening", LOG_STR("url", url), LOG_STR("client_id", config.client_id),
	         LOG_BOOL("auto_approve", config.auto_approve), LOG_STR("timezone", config.timezone));
	printf("{\"listening\":\"%s\"}\n", url);
	fflush(stdout);
	event_base_dispatch(base);
	server_stop();
	event_free(sigterm);
	event_free(sigint);
	admin_free();
	faults_free();
	freebusy_free();
	watch_free();
	journal_free();
	grants_free();
	store_free();
	rc = 0;
out:
	if (base != NULL)
		event_base_free(base);
	config_clear(&config);
	free(url);
	free(host);
	free(listen);
	tz_shutdown();
	libevent_global_shutdown();
	log_shutdown();
	return rc;
}
