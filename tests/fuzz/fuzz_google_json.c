/*
 * fuzz_google_json: Google's answers, read the way every caller reads them.
 *
 * Input: a status selector byte, an OAuth flag byte, then the body. The
 * reader must classify any body (HTML error pages, truncated JSON, odd
 * types) without crashing, and its invariants hold: a 2xx is OK whatever
 * the body says, nothing is OK outside 2xx, invalid_grant is recognised only
 * from the token endpoint, and 5xx and 429 always retry. A 2xx body is also
 * read as a freeBusy answer: the spans come back disjoint, sorted and inside
 * the range, or the answer is refused, never half read.
 */
#include "fuzz.h"

#include "busy.h"
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
	if (res.outcome == GOOGLE_OK) {
		struct busy_list busy = { 0 };
		const char *error;
		const int64_t from = 1796720400, to = from + 86400;

		if (busy_from_freebusy(res.json, "primary", from, to, &busy, &error) < 0 && busy.n != 0)
			fuzz_fail("a refused freeBusy answer left spans behind");
		for (size_t i = 0; i < busy.n; i++)
			if (busy.spans[i].start_s < from || busy.spans[i].end_s > to ||
			    busy.spans[i].end_s <= busy.spans[i].start_s ||
			    (i > 0 && busy.spans[i].start_s <= busy.spans[i - 1].end_s))
				fuzz_fail("freeBusy span %zu is not disjoint, sorted and inside the range", i);
		if (error != NULL && busy.n != 0)
			fuzz_fail("a calendar with errors has busy spans");
		busy_clear(&busy);
	}
	google_json_free(res.json);
	return 0;
}
