/*
 * gcalctl: the operator's command-line tool for the booking services.
 *
 * One binary beside the three services, in the same image, reading the same
 * environment: it publishes leads as the webhook would, inspects and replays
 * dead letters, shows a user's calendar state, rotates the token encryption
 * key, probes /healthz for container health checks (the runtime image
 * has no curl), shows or makes the services' broker users, and asks for a
 * user's calendar to be synced again. This file only picks the subcommand; docs/operations.md says
 * when to use which.
 */
#include <string.h>

#include "gcalctl.h"
#include "log.h"

struct main_command {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct main_command main_commands[] = {
	{ "publish-lead", publish_lead_main },
	{ "sample-lead", publish_sample_main },
	{ "dead", dead_main },
	{ "user", user_main },
	{ "rotate-key", rotate_main },
	{ "health", probe_main },
	{ "broker-users", brokerusers_main },
	{ "resync", resync_main },
};

/* Every subcommand answers --help (or -h) wherever it stands, before anything is checked or done. */
static bool main_help_asked(int argc, char **argv)
{
	for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	int status = GCALCTL_EXIT_USAGE;
	bool found = false;

	log_init("gcalctl", LOG_INFO);
	if (argc < 2)
		return cli_usage();
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		cli_help();
		return 0;
	}
	for (size_t i = 0; i < sizeof(main_commands) / sizeof(*main_commands) && !found; i++) {
		if (strcmp(argv[1], main_commands[i].name) == 0) {
			status = main_help_asked(argc, argv) ? (cli_help_command(argv[1]), 0)
							     : main_commands[i].run(argc - 1, argv + 1);
			found = true;
		}
	}
	if (!found)
		status = cli_usage();
	log_shutdown();
	return status;
}
