/*
 * fuzz_google_json: Google's answers, read the way every caller reads them.
 *
 * Input: a status selector byte, an OAuth flag byte, then the body. The
 * reader must classify any body (HTML error pages, truncated JSON, odd
 * types) without crashing, and its invariants hold: a 2xx is OK whatever
 * the body says, nothing is OK outside 2xx, invalid_grant is recognised only
 * from the token endpoint, and 5xx and 429 always retry.
 */
#include "fuzz.h"

#include "google.h"

static const long fuzz_statuses[] = { 0, 200, 204, 400, 401, 403, 404, 409, 410, 412, 429, 500, 503 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct google_result res;
	long status;
	bool oauth;

	if (size < 2)
		return 0;
	status = fuzz_statuses[data[0] % (sizeof(fuzz_statuses) / sizeof(*fuzz_statuses))];
	oauth = data[1] & 1;
	google_read_response(status, (const char *)data + 2, size - 2, oauth, &res);
	if ((status >= 200 && status < 300) != (res.outcome == GOOGLE_OK))
		fuzz_fail("status %ld read as %s", status, google_outcome_name(res.outcome));
	if (res.outcome == GOOGLE_INVALID_GRANT && !oauth)
		fuzz_fail("invalid_grant outside the token endpoint");
	if ((status >= 500 || status == 429 || status == 0) && res.outcome != GOOGLE_TRANSIENT)
		fuzz_fail("status %ld is not retried", status);
	if ((res.reason != NULL || res.message != NULL) && res.json == NULL)
		fuzz_fail("an error reason read from no JSON");
	google_json_free(res.json);
	return 0;
}
