/*
 * fuzz_http: what a client controls in a gateway request, past libevent's
 * own parser: the path against the real route table, the query string, the
 * Cookie header and the JSON body of the meetings writes.
 *
 * Input: method selector byte, then NUL-separated path, query, cookie
 * header, body. Invariants: a matched route yields only non-empty
 * parameters; a body the checks accept has a UUID lead, an email without
 * line breaks or angle brackets and a name without control characters
 * (what reaches the scheduler's message and the mail).
 */
#include "fuzz.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "cfg.h"
#include "gateway.h"
#include "http.h"
#include "ids.h"

static const unsigned fuzz_methods[] = {
	EVHTTP_REQ_GET, EVHTTP_REQ_POST, EVHTTP_REQ_PUT, EVHTTP_REQ_DELETE, EVHTTP_REQ_PATCH, EVHTTP_REQ_OPTIONS,
};

static void fuzz_route(const char *path, unsigned method)
{
	static struct http_route routes[GATEWAY_MAX_ROUTES];
	static size_t nroutes;
	char *params[HTTP_MAX_PARAMS] = { NULL };
	unsigned allowed;
	int first, i;

	if (nroutes == 0) {
		struct config cfg = { 0 };

		cfg.web_ui = true;
		cfg.web_ui_dev_user = "0f8fad5b-d9cb-469f-a165-70867728950e";
		nroutes = gateway_route_table(&cfg, routes);
	}
	i = http_route_find(routes, nroutes, path, method, params, &allowed, &first);
	if (i >= 0 && (first < 0 || (routes[i].methods & method) == 0))
		fuzz_fail("route %d matched '%s' without fitting it", i, path);
	for (size_t k = 0; k < HTTP_MAX_PARAMS; k++) {
		if (params[k] != NULL && params[k][0] == '\0')
			fuzz_fail("an empty parameter from '%s'", path);
		free(params[k]);
	}
}

static void fuzz_query(const char *query)
{
	struct evkeyvalq q;

	if (evhttp_parse_query_str(query, &q) == 0) {
		evhttp_find_header(&q, "limit");
		evhttp_find_header(&q, "status");
		evhttp_find_header(&q, "state");
	}
	evhttp_clear_headers(&q);
}

static void fuzz_body(const char *text)
{
	static const enum command_kind kinds[] = { COMMAND_CREATE, COMMAND_RESCHEDULE, COMMAND_CANCEL };
	cJSON *body = cJSON_Parse(text);
	struct commands_input in;
	char why[160];

	if (!cJSON_IsObject(body)) {
		cJSON_Delete(body);
		return;
	}
	for (size_t k = 0; k < sizeof(kinds) / sizeof(*kinds); k++) {
		if (commands_check_body(kinds[k], body, 1767225600, &in, why, sizeof(why)) < 0) {
			if (why[0] == '\0')
				fuzz_fail("a refusal without a message");
			continue;
		}
		if (kinds[k] == COMMAND_CREATE && !ids_is_uuid(in.lead))
			fuzz_fail("accepted lead '%s'", in.lead);
		if (in.email != NULL && strpbrk(in.email, "\r\n<>") != NULL)
			fuzz_fail("accepted email '%s'", in.email);
		for (const char *p = in.name; p != NULL && *p; p++) {
			if ((unsigned char)*p < 0x20)
				fuzz_fail("accepted a control character in a name");
		}
	}
	cJSON_Delete(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_fields f;
	char *value;

	if (size < 1)
		return 0;
	fuzz_fields_split(data + 1, size - 1, &f, 4);
	fuzz_route(f.v[0], fuzz_methods[data[0] % (sizeof(fuzz_methods) / sizeof(*fuzz_methods))]);
	fuzz_query(f.v[1]);
	value = http_cookie_find(f.v[2], "gcal_session");
	if (value != NULL && strchr(value, ';') != NULL)
		fuzz_fail("a cookie value ran into the next cookie");
	free(value);
	fuzz_body(f.v[3]);
	fuzz_fields_free(&f);
	return 0;
}
