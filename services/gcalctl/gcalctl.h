/*
 * gcalctl: what the operator's command-line tool's modules share.
 *
 * Each subcommand lives in its own file and is entered through a
 * *_main(argc, argv) function that receives the arguments after its name
 * and returns the process's exit status. Unlike the services, gcalctl is a
 * short-lived command: it may block on the database and the broker, and it
 * prints its results to stdout for a person (or JSON with --json for a
 * script); errors go to stderr as the services' JSON log lines, once, where
 * they happen.
 */
#ifndef GCALCTL_H
#define GCALCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

/* Exit statuses (sysexits.h where one fits): 0 success, 1 the operation failed. */
#define GCALCTL_EXIT_FAILED 1
#define GCALCTL_EXIT_USAGE 64	/* EX_USAGE */

/* Subcommands. */
int publish_lead_main(int argc, char **argv);
int publish_sample_main(int argc, char **argv);
int dead_main(int argc, char **argv);
int user_main(int argc, char **argv);
int rotate_main(int argc, char **argv);
int probe_main(int argc, char **argv);
int brokerusers_main(int argc, char **argv);
int resync_main(int argc, char **argv);

/* Print the usage text to stderr and return GCALCTL_EXIT_USAGE (a command line that makes no sense). */
int cli_usage(void);
/* Print the usage text to stdout (asked for with --help). */
void cli_help(void);
/* The usage of one subcommand (its lines of the full text) and where configuration comes from, to stdout. */
void cli_help_command(const char *name);

/*
 * Read the configuration groups a subcommand needs (cfg.h) and apply
 * LOG_LEVEL; a missing or malformed variable is logged and exits 78, as in
 * the services. Release with cfg_free().
 */
void cli_config(struct config *cfg, unsigned groups);

/* prefix followed by 32 random hexadecimal digits: a fresh message id. The caller frees it. */
char *cli_random_id(const char *prefix);

/* A duration for people: "42s", "5m 12s", "3h 4m", "2d 1h". buf of 32 bytes is enough. */
void cli_format_duration(int64_t seconds, char *buf, size_t size);

#endif
