/*
 * probe: `gcalctl health URL`, an HTTP probe for container health checks.
 *
 * The runtime image carries no curl binary, so compose's health checks run
 * this instead: one GET with a deadline, no redirects followed, exit 0 on
 * 200 and 1 otherwise (the status or the error is logged). It needs no
 * configuration. Kubernetes probes HTTP itself and does not need it.
 */
#include <getopt.h>
#include <stdlib.h>

#include <curl/curl.h>

#include "gcalctl.h"
#include "log.h"

#define PROBE_DEFAULT_TIMEOUT_S 5
#define PROBE_MAX_TIMEOUT_S 300

/* The body (readiness details, metrics) is not needed: only the status decides. */
static size_t probe_discard(char *data, size_t size, size_t nmemb, void *arg)
{
	(void)data;
	(void)arg;
	return size * nmemb;
}

static int probe_get(const char *url, long timeout_s)
{
	CURL *curl = curl_easy_init();
	char error[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;

	if (curl == NULL) {
		log_error("cannot initialise libcurl");
		return GCALCTL_EXIT_FAILED;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, probe_discard);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "gcalctl-health");
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (rc != CURLE_OK) {
		log_error("health probe failed", LOG_STR("url", url),
			  LOG_STR("error", error[0] ? error : curl_easy_strerror(rc)));
		return GCALCTL_EXIT_FAILED;
	}
	if (status != 200) {
		log_error("health probe: not healthy", LOG_STR("url", url), LOG_INT("status", status));
		return GCALCTL_EXIT_FAILED;
	}
	return 0;
}

int probe_main(int argc, char **argv)
{
	static const struct option opts[] = { { "timeout", required_argument, NULL, 't' }, { 0 } };
	struct config cfg = { 0 };
	long timeout_s = PROBE_DEFAULT_TIMEOUT_S;
	char *end;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 't')
			return cli_usage();
		timeout_s = strtol(optarg, &end, 10);
		if (*end != '\0' || timeout_s < 1 || timeout_s > PROBE_MAX_TIMEOUT_S) {
			log_error("--timeout must be a number of seconds from 1 to 300");
			return GCALCTL_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc)
		return cli_usage();
	cli_config(&cfg, 0);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialise libcurl");
		cfg_free(&cfg);
		return GCALCTL_EXIT_FAILED;
	}
	rc = probe_get(argv[optind], timeout_s);
	curl_global_cleanup();
	cfg_free(&cfg);
	return rc;
}
