/*
 * cli: small things every gcalctl subcommand needs (see gcalctl.h): the
 * usage text, configuration, identifiers and durations for people.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gcalctl.h"
#include "log.h"
#include "xmalloc.h"

#define CLI_RANDOM_BYTES 16

static const char cli_usage_text[] =
	"usage: gcalctl COMMAND [ARGS]\n"
	"\n"
	"  publish-lead --user ID --lead ID [--message-id ID]\n"
	"        publish lead.analyzed for an existing lead, as the platform's webhook does\n"
	"  sample-lead --user ID [--email ADDRESS] [--at DATETIME]\n"
	"        insert a demo call and lead for the user (tomorrow 15:00 in their zone) and publish it\n"
	"  dead list [scheduler|mailer] [--json]\n"
	"        show the dead letters (reason, detail, message id, routing key, age) without removing them\n"
	"  dead replay scheduler|mailer (--id MESSAGE_ID | --all)\n"
	"        send dead letters back to the queue they came from with a fresh retry count;\n"
	"        each leaves the dead queue only once the broker has confirmed the copy\n"
	"  user ID [--json]\n"
	"        a user's calendar connection, token expiry (never the tokens), meetings and outcomes\n"
	"  rotate-key\n"
	"        re-seal every stored token under the first key of TOKEN_ENCRYPTION_KEY\n"
	"  health URL [--timeout SECONDS]\n"
	"        exit 0 when URL answers 200 (container health checks)\n"
	"  broker-users [--json | --rabbitmqctl [--vhost VHOST] | --apply [--vhost VHOST]]\n"
	"        each service's broker user and permissions; the rabbitmqctl commands that make them;\n"
	"        or make them through the management API (RABBITMQ_API_URL, <ROLE>_AMQP_PASSWORD)\n"
	"  resync ID [--full]\n"
	"        sync the user's Google Calendar into the platform now; --full lists the whole calendar\n"
	"        again and reconciles every active meeting, instead of the changes since the last sync\n"
	"\n"
	"Configuration comes from the environment, as for the services (docs/configuration.md):\n"
	"DATABASE_URL for sample-lead, user, rotate-key and resync; AMQP_URL for publish-lead,\n"
	"sample-lead, dead and resync; TOKEN_ENCRYPTION_KEY for rotate-key. The runbook is\n"
	"docs/operations.md.\n";

int cli_usage(void)
{
	fputs(cli_usage_text, stderr);
	return GCALCTL_EXIT_USAGE;
}

void cli_help(void)
{
	fputs(cli_usage_text, stdout);
}

void cli_help_command(const char *name)
{
	const char *p = cli_usage_text;
	size_t n = strlen(name);
	bool in = false;

	fputs("usage:\n", stdout);
	while (*p != '\0') {
		size_t len = strcspn(p, "\n");

		/* A command's lines: "  name ..." and the more deeply indented lines under it. */
		if (strncmp(p, "  ", 2) == 0 && p[2] != ' ')
			in = strncmp(p + 2, name, n) == 0 && (p[2 + n] == ' ' || p[2 + n] == '\n');
		else if (strncmp(p, "    ", 4) != 0)
			in = false;
		if (in)
			printf("%.*s\n", (int)len, p);
		p += len + (p[len] == '\n');
	}
	fputs("\n", stdout);
	fputs(strstr(cli_usage_text, "Configuration comes from"), stdout);
}

void cli_config(struct config *cfg, unsigned groups)
{
	cfg_load_or_exit(cfg, groups, NULL);
	log_set_level(cfg->log_level);
}

char *cli_random_id(const char *prefix)
{
	unsigned char raw[CLI_RANDOM_BYTES];
	char hex[CLI_RANDOM_BYTES * 2 + 1];

	if (sodium_init() < 0) {
		log_error("libsodium failed to initialise");
		abort();
	}
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
	return xasprintf("%s%s", prefix, hex);
}

void cli_format_duration(int64_t seconds, char *buf, size_t size)
{
	long long s = seconds < 0 ? -(long long)seconds : (long long)seconds;

	if (s < 60)
		snprintf(buf, size, "%llds", s);
	else if (s < 3600)
		snprintf(buf, size, "%lldm %llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, size, "%lldd %lldh", s / 86400, s % 86400 / 3600);
}
