/*
 * rotate: `gcalctl rotate-key`, re-sealing every stored secret under the
 * first key of TOKEN_ENCRYPTION_KEY.
 *
 * The services open a value sealed with any key of their ring, so rotation
 * needs no downtime (docs/operations.md): put the new key first in every
 * service's ring ("2:new,1:old"), restart them, run this, and drop the old
 * key only once it reports nothing left under it. Rows are read in batches
 * in key order and each value is replaced on its own with
 * `UPDATE ... WHERE value = old_value`: a token the scheduler refreshed or a
 * user reconnected meanwhile is newer than ours and is left alone (counted
 * as "changed meanwhile"; it was sealed under the writer's first key). A
 * second run finds nothing to do, so running it again is always safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcalctl.h"
#include "log.h"
#include "sql.h"
#include "vault.h"
#include "xmalloc.h"

#define ROTATE_BATCH 200
#define ROTATE_STR(x) #x
#define ROTATE_LIMIT(x) " LIMIT " ROTATE_STR(x)

/*
 * Where sealed values live, with the user id they are bound to (the
 * associated data). Selects take $1 = the current version's prefix pattern
 * and $2 = the last row key seen (NULL first) and return key, user, value;
 * updates take $1 key, $2 old value, $3 new value; tallies take $1 and count
 * values under the current key and under older ones.
 */
struct rotate_target {
	const char *name;
	const char *select_sql;
	const char *update_sql;
	const char *tally_sql;
};

static const struct rotate_target rotate_targets[] = {
	{
		"users.google_access_token",
		"SELECT id::text, id::text, google_access_token FROM users"
		" WHERE google_access_token IS NOT NULL AND google_access_token NOT LIKE $1"
		" AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id" ROTATE_LIMIT(ROTATE_BATCH),
		"UPDATE users SET google_access_token = $3 WHERE id = $1::uuid AND google_access_token = $2",
		"SELECT count(*) FILTER (WHERE google_access_token LIKE $1),"
		" count(*) FILTER (WHERE google_access_token NOT LIKE $1)"
		" FROM users WHERE google_access_token IS NOT NULL",
	},
	{
		"users.google_refresh_token",
		"SELECT id::text, id::text, google_refresh_token FROM users"
		" WHERE google_refresh_token IS NOT NULL AND google_refresh_token NOT LIKE $1"
		" AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id" ROTATE_LIMIT(ROTATE_BATCH),
		"UPDATE users SET google_refresh_token = $3 WHERE id = $1::uuid AND google_refresh_token = $2",
		"SELECT count(*) FILTER (WHERE google_refresh_token LIKE $1),"
		" count(*) FILTER (WHERE google_refresh_token NOT LIKE $1)"
		" FROM users WHERE google_refresh_token IS NOT NULL",
	},
	{
		"oauth_states.code_verifier",
		"SELECT encode(state_hash, 'hex'), user_id::text, code_verifier FROM oauth_states"
		" WHERE code_verifier NOT LIKE $1 AND ($2::text IS NULL OR state_hash > decode($2, 'hex'))"
		" ORDER BY state_hash" ROTATE_LIMIT(ROTATE_BATCH),
		"UPDATE oauth_states SET code_verifier = $3 WHERE state_hash = decode($1, 'hex') AND code_verifier = $2",
		"SELECT count(*) FILTER (WHERE code_verifier LIKE $1), count(*) FILTER (WHERE code_verifier NOT LIKE $1)"
		" FROM oauth_states",
	},
};

struct rotate_counts {
	long resealed;
	long raced;		/* changed by a service between our read and our write */
	long unreadable;	/* no key of the ring opens it */
	long current;		/* after the run: under the current key */
	long older;		/* after the run: under an older key */
};

/* Re-seal one value. 0, or -1 when the database failed. */
static int rotate_one(PGconn *db, const struct vault *vault, const struct rotate_target *t, const char *key,
		      const char *user, const char *sealed, struct rotate_counts *c)
{
	char *plain = NULL, *fresh;
	PGresult *res;

	if (vault_open(vault, sealed, user, &plain) < 0) {
		log_warn("cannot open a sealed value with any key of the ring; left as it is", LOG_STR("column", t->name),
			 LOG_STR("row", key), LOG_INT("key_version", vault_sealed_version(sealed)));
		c->unreadable++;
		return 0;
	}
	fresh = vault_seal(vault, plain, user);
	vault_wipe_free(plain);
	{
		const char *params[] = { key, sealed, fresh };

		res = sql_exec(db, "replace a sealed value", t->update_sql, 3, params);
	}
	free(fresh);
	if (res == NULL)
		return -1;
	if (sql_changed(res) == 1)
		c->resealed++;
	else
		c->raced++;
	PQclear(res);
	return 0;
}

static int rotate_target(PGconn *db, const struct vault *vault, const char *pattern, const struct rotate_target *t,
			 struct rotate_counts *c)
{
	char *last = NULL;
	int rc = 0, n;

	do {
		const char *params[] = { pattern, last };
		PGresult *res = sql_exec(db, "read sealed values", t->select_sql, 2, params);

		if (res == NULL) {
			rc = -1;
			break;
		}
		n = PQntuples(res);
		for (int i = 0; i < n && rc == 0; i++)
			rc = rotate_one(db, vault, t, sql_value(res, i, 0), sql_value(res, i, 1), sql_value(res, i, 2), c);
		if (n > 0) {
			free(last);
			last = xstrdup(sql_value(res, n - 1, 0));
		}
		PQclear(res);
	} while (rc == 0 && n == ROTATE_BATCH);
	free(last);
	return rc;
}

static int rotate_tally(PGconn *db, const char *pattern, const struct rotate_target *t, struct rotate_counts *c)
{
	const char *params[] = { pattern };
	PGresult *res = sql_exec(db, "count sealed values", t->tally_sql, 1, params);

	if (res == NULL)
		return -1;
	c->current = strtol(sql_value(res, 0, 0), NULL, 10);
	c->older = strtol(sql_value(res, 0, 1), NULL, 10);
	PQclear(res);
	return 0;
}

static int rotate_run(PGconn *db, const struct vault *vault)
{
	int version = vault_current_version(vault);
	char *pattern = xasprintf("v%d:%%", version);
	long older = 0;
	int rc = 0;

	printf("sealing under key version %d\n", version);
	for (size_t i = 0; i < sizeof(rotate_targets) / sizeof(*rotate_targets) && rc == 0; i++) {
		const struct rotate_target *t = &rotate_targets[i];
		struct rotate_counts c = { 0 };

		rc = rotate_target(db, vault, pattern, t, &c);
		if (rc == 0)
			rc = rotate_tally(db, pattern, t, &c);
		if (rc < 0)
			break;
		printf("%-28s re-sealed %ld, changed meanwhile %ld, cannot open %ld; now %ld under v%d, %ld under older keys\n",
		       t->name, c.resealed, c.raced, c.unreadable, c.current, version, c.older);
		older += c.older;
	}
	free(pattern);
	if (rc == 0 && older > 0) {
		log_error("some values are still sealed under older keys: run rotate-key again; if they stay, a service "
			  "still seals with an old first key, or a value no key opens is logged above",
			  LOG_INT("older", older));
		rc = -1;
	}
	return rc;
}

int rotate_main(int argc, char **argv)
{
	struct config cfg = { 0 };
	struct vault *vault;
	char *err = NULL;
	PGconn *db;
	int rc = GCALCTL_EXIT_FAILED;

	(void)argv;
	if (argc != 1)
		return cli_usage();
	cli_config(&cfg, CFG_DATABASE | CFG_VAULT);
	vault = vault_new(cfg.token_encryption_key, &err);
	if (vault == NULL) {
		log_error("invalid configuration", LOG_STR("variable", "TOKEN_ENCRYPTION_KEY"), LOG_STR("problem", err));
		free(err);
		cfg_free(&cfg);
		return GCALCTL_EXIT_FAILED;
	}
	db = sql_connect(cfg.database_url);
	if (db != NULL && rotate_run(db, vault) == 0)
		rc = 0;
	PQfinish(db);
	vault_free(vault);
	cfg_free(&cfg);
	return rc;
}
