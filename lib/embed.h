/*
 * embed: files compiled into a binary.
 *
 * The mailer's templates and the gateway's web UI are files in the
 * repository, turned into C at build time by lib/embed.py (a meson
 * custom_target), so a running service reads no files and a deployment can
 * never pair a binary with stale or foreign ones.
 */
#ifndef EMBED_H
#define EMBED_H

#include <stddef.h>

struct embed_file {
	const char *name;	/* the file's name without its directory, "created.txt" */
	const char *type;	/* its Content-Type, from the extension */
	const char *etag;	/* a quoted hash of its bytes */
	size_t len;
	const char *data;	/* NUL-terminated; len bytes */
};

/* The file called name among files[0..n), or NULL. */
const struct embed_file *embed_find(const struct embed_file *files, size_t n, const char *name);

#endif
