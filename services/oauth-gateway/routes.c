/*
 * routes: the gateway's route table, apart from main.c so that the fuzzer
 * (tests/fuzz/fuzz_http.c) matches paths against exactly what is served.
 */
#include <event2/http.h>

#include "cfg.h"
#include "gateway.h"
#include "http.h"

static const struct http_route gateway_routes[] = {
	{ EVHTTP_REQ_GET, "/api/integrations/google/auth", HTTP_AUTH_BROWSER, oauth_auth, 0 },
	{ EVHTTP_REQ_GET, "/api/integrations/google/callback", HTTP_AUTH_NONE, oauth_callback, 0 },
	{ EVHTTP_REQ_POST, "/api/integrations/google/disconnect", HTTP_AUTH_BEARER, oauth_disconnect, 0 },
	{ EVHTTP_REQ_GET, "/api/integrations/google/status", HTTP_AUTH_BEARER, oauth_status, 0 },
	{ EVHTTP_REQ_GET, "/api/calendar/availability", HTTP_AUTH_BEARER, commands_availability, 0 },
	{ EVHTTP_REQ_GET, "/api/calendar/meetings", HTTP_AUTH_BEARER, meetings_list, 0 },
	{ EVHTTP_REQ_POST, "/api/calendar/meetings", HTTP_AUTH_BEARER, commands_create, 0 },
	{ EVHTTP_REQ_GET, "/api/calendar/meetings/lead/:leadAnalyticsId", HTTP_AUTH_BEARER, meetings_by_lead, 0 },
	{ EVHTTP_REQ_GET, "/api/calendar/meetings/:meetingId", HTTP_AUTH_BEARER, meetings_get, 0 },
	{ EVHTTP_REQ_DELETE, "/api/calendar/meetings/:meetingId", HTTP_AUTH_BEARER, commands_cancel, 0 },
	{ EVHTTP_REQ_PUT, "/api/calendar/meetings/:meetingId/reschedule", HTTP_AUTH_BEARER, commands_reschedule, 0 },
	/* Google's pushes: vouched for by their channel's token, never by a user; no body is read. */
	{ EVHTTP_REQ_POST, "/webhooks/google/calendar", HTTP_AUTH_NONE, webhook_google_calendar, HTTP_ROUTE_NO_BODY },
};

/* WEB_UI: the pages and their files, public like any login page; their data comes from the API. */
static const struct http_route gateway_web_routes[] = {
	{ EVHTTP_REQ_GET, "/", HTTP_AUTH_NONE, web_integrations, 0 },
	{ EVHTTP_REQ_GET, "/leads/:leadAnalyticsId", HTTP_AUTH_NONE, web_lead, 0 },
	/* A file's name is matched as written: "app.css/" is not app.css. */
	{ EVHTTP_REQ_GET, "/static/:file", HTTP_AUTH_NONE, web_static, HTTP_ROUTE_EXACT },
};

/* WEB_UI_DEV_USER (the local stack): a session for that user to whoever asks. */
static const struct http_route gateway_dev_routes[] = {
	{ EVHTTP_REQ_GET, "/dev/sign-in", HTTP_AUTH_NONE, web_dev_sign_in, 0 },
};

#define GATEWAY_NROUTES(a) (sizeof(a) / sizeof(*(a)))

/* A route that is off is absent, not refused: it answers 404 like any unknown path and gives away nothing. */
size_t gateway_route_table(const struct config *cfg, struct http_route *routes)
{
	size_t n = 0;

	for (size_t i = 0; i < GATEWAY_NROUTES(gateway_routes); i++)
		routes[n++] = gateway_routes[i];
	for (size_t i = 0; cfg->web_ui && i < GATEWAY_NROUTES(gateway_web_routes); i++)
		routes[n++] = gateway_web_routes[i];
	/* cfg.c accepts WEB_UI_DEV_USER only beside WEB_UI=on; asking again costs nothing. */
	for (size_t i = 0; cfg->web_ui && cfg->web_ui_dev_user != NULL && i < GATEWAY_NROUTES(gateway_dev_routes); i++)
		routes[n++] = gateway_dev_routes[i];
	return n;
}

_Static_assert(GATEWAY_NROUTES(gateway_routes) + GATEWAY_NROUTES(gateway_web_routes) +
		       GATEWAY_NROUTES(gateway_dev_routes) <= GATEWAY_MAX_ROUTES,
	       "GATEWAY_MAX_ROUTES is too small");
