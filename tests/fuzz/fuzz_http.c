/*
 * fuzz_http: what a client controls in a gateway request, past libevent's
 * own parser: the path against the real route table, the query string, the
 * Cookie header and the JSON body of the meetings writes.
 *
 * Input: method selector byte, then NUL-separated path, query, cookie
 * header, body; the same bytes after the selector are also a request head
 * for the connection guard (httpconn.c). Invariants: a matched route yields
 * only non-empty parameters; a body the checks accept has a UUID lead, an
 * email without line breaks or angle brackets and a name without control
 * characters (what reaches the scheduler's message and the mail); a head
 * the guard accepts reaches evhttp with CRLF line ends and without
 * Content-Length, Transfer-Encoding or Expect, and is accepted again as it
 * is; a refused one says why.
 */
#include "fuzz.h"

#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "cfg.h"
#include "gateway.h"
#include "http.h"
#include "httpconn.h"
#include "ids.h"
#include "xmalloc.h"

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
		if (commands_check_body(kinds[k], body, 1767225600, 730, &in, why, sizeof(why)) < 0) {
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

static void fuzz_head(const char *head, size_t len)
{
	struct evbuffer *out = evbuffer_new();
	struct http_head h, again;
	size_t n;
	char *text;

	if (http_head_check(head, len, &h, out) < 0) {
		if (h.status < 400 || h.status > 505 || h.code == NULL || h.message == NULL)
			fuzz_fail("a refused head without a status, code and message");
		if (evbuffer_get_length(out) != 0)
			fuzz_fail("a refused head reached evhttp");
		evbuffer_free(out);
		return;
	}
	if (h.status != 0 || h.method == 0 || h.content_length < -1)
		fuzz_fail("an accepted head with status %d, method %u, length %lld", h.status, h.method,
			  h.content_length);
	n = evbuffer_get_length(out);
	text = xstrndup((const char *)evbuffer_pullup(out, -1), n);
	if (n < 4 || strlen(text) != n || strcmp(text + n - 4, "\r\n\r\n") != 0)
		fuzz_fail("an accepted head does not end in an empty line");
	for (char *p = strchr(text, '\n'); p != NULL && p[1] != '\0'; p = strchr(p + 1, '\n')) {
		if (p[-1] != '\r')
			fuzz_fail("a line of the head evhttp gets ends without CR");
		if (strncasecmp(p + 1, "content-length:", 15) == 0 || strncasecmp(p + 1, "transfer-encoding:", 18) == 0 ||
		    strncasecmp(p + 1, "expect:", 7) == 0)
			fuzz_fail("evhttp would see a framing header");
	}
	if (http_head_check(text, n, &again, NULL) < 0 || again.method != h.method || again.content_length != -1)
		fuzz_fail("the head evhttp gets is not accepted again as it is");
	free(text);
	evbuffer_free(out);
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
	fuzz_head((const char *)data + 1, size - 1);
	return 0;
}
