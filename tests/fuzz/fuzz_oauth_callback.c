/*
 * fuzz_oauth_callback: the query Google (or anyone) sends to
 * /api/integrations/google/callback, and the scope list of Google's token
 * answer.
 *
 * Input: the query string, NUL, a reason, NUL, a scope list. The callback
 * reads error, code and state from the query as libevent parses it, and
 * whatever it decides, the browser goes to FRONTEND_URL. Invariants: the
 * redirect starts with FRONTEND_URL, names one of the fixed outcomes, and
 * has no byte that could end a header or start another URL (CR, LF, space,
 * quote, angle bracket, backslash).
 */
#include "fuzz.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gateway.h"

static const char fuzz_frontend[] = "https://app.example.com/settings/integrations?tab=calendar#google";
static const char fuzz_prefix[] = "https://app.example.com/settings/integrations?tab=calendar&google=";

static void fuzz_check_url(const char *reason)
{
	char *url = oauth_result_url(fuzz_frontend, reason);

	if (strncmp(url, fuzz_prefix, strlen(fuzz_prefix)) != 0)
		fuzz_fail("redirect '%s' left FRONTEND_URL", url);
	if (strpbrk(url, "\r\n \"'<>\\") != NULL)
		fuzz_fail("redirect '%s' carries a dangerous byte", url);
	if (strcmp(url + strlen(url) - 7, "#google") != 0)
		fuzz_fail("redirect '%s' lost the fragment", url);
	free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_fields f;
	struct evkeyvalq q;

	fuzz_fields_split(data, size, &f, 3);
	if (evhttp_parse_query_str(f.v[0], &q) == 0) {
		const char *error = evhttp_find_header(&q, "error");
		const char *state = evhttp_find_header(&q, "state");

		evhttp_find_header(&q, "code");
		/* The gateway's own choice of outcome, then what it does with a reason from anywhere. */
		fuzz_check_url(state == NULL || *state == '\0' ? "invalid_state"
			       : error == NULL			  ? NULL
			       : strcmp(error, "access_denied") == 0 ? "access_denied"
								     : "exchange_failed");
	}
	evhttp_clear_headers(&q);
	fuzz_check_url(f.v[1]);
	oauth_has_scope(f.v[2], "https://www.googleapis.com/auth/calendar.events");
	fuzz_fields_free(&f);
	return 0;
}
