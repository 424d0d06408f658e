/*
 * Unit tests of lib/leadfacts: the AI's reasoning as the rep reads it, in
 * the calendar event and in every mail alike.
 */
#include "leadfacts.h"

#include <stdlib.h>

#include "tap.h"

static void check(const char *json, const char *want, const char *what)
{
	char *got = leadfacts_reasoning(json);

	CHECK_STR(got, want, "%s", what);
	free(got);
}

int main(void)
{
	check("{\"intent\": \"High\", \"budget\": 5000, \"tags\": [\"a\"]}",
	      "- intent: High\n- budget: 5000\n- tags: [\"a\"]", "a JSON object is one \"- key: value\" line a member");
	check("[\"one\", 2]", "- one\n- 2", "an array is a list");
	check("\"just text\"", "just text", "a JSON string is its text");
	check("42", "42", "other JSON is printed");
	check("not JSON: \"quoted\" \\ text", "not JSON: \"quoted\" \\ text", "text that is not JSON is itself");
	check("{\"why\": \"<b>x</b>\\r\\nBcc: y\"}", "- why: <b>x</b>\r\nBcc: y",
	      "values are placed, never interpreted (escaping is the caller's)");
	check(NULL, NULL, "no reasoning is none");
	check("null", NULL, "JSON null is none");
	check("{}", NULL, "an empty object is none");
	check("[]", NULL, "an empty list is none");
	check("\"\"", NULL, "an empty string is none");
	check("", NULL, "empty text is none");
	return tap_done();
}
