/* datadir.c - opening the data directory, or the shared PostgreSQL
 * database, for the offline subcommands (datadir.h). */
#include "datadir.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include "pg.h"
#include "secure_start.h"
#include "store_pg.h"

/* The node name the command's store handle registers under (store_pg.h
 * appends a boot id); it never holds a room past its own exit. */
#define CLI_PG_NODE_NAME "attune-cli"

cli_data_options cli_data_options_of(const cli_command *cmd, const cli_args *a)
{
    cli_data_options o = {0};
    o.data_dir = cli_get(cmd, a, "data");
    o.store_uri = cli_get(cmd, a, "store");
    o.kek_file = cli_get(cmd, a, "kek-file");
    o.key_file = cli_get(cmd, a, "key-file");
    o.protocol_dir = cli_get(cmd, a, "protocol-dir");
    return o;
}

int cli_data_on_pg(const cli_data_options *opt)
{
    return opt->store_uri != NULL;
}

const char *cli_data_where(const cli_data *d)
{
    return d->store_uri ? "the database" : d->data_dir;
}

/* The SQLite data directory: it must hold attune.db unless create. */
static int open_sqlite(const cli_data_options *opt, cli_data *out, att_error *e, FILE *err)
{
    char path[4096];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/attune.db", opt->data_dir) >= (int)sizeof path) {
        fprintf(err, "attune: data directory path too long\n");
        return -1;
    }
    if (srv_secure_data_dir(opt->data_dir, e) < 0) {
        fprintf(err, "attune: %s\n", e->message);
        return -1;
    }
    if (!opt->create && stat(path, &st) != 0) {
        fprintf(err, "attune: no event store at %s (create a room first, or check --data)\n", path);
        return -1;
    }
    /* The keys first: the store borrows them. The KEK is made only for a
     * data directory whose keys.db holds no key yet (a new one, or one of
     * the formats before per-room keys, which the store then migrates). */
    if (srv_keyring_open(opt->data_dir, opt->kek_file, 1, &out->keys, e) < 0 ||
        srv_store_open(opt->data_dir, out->keys, &out->store, e) < 0 ||
        (opt->want_accounts &&
         srv_accounts_open(opt->data_dir, opt->create, &out->accounts, e) < 0) ||
        (opt->want_invites && srv_invites_open(opt->data_dir, &out->invites, e) < 0)) {
        fprintf(err, "attune: %s\n", e->message);
        return -1;
    }
    return 0;
}

/* The shared database, as attune-server --store opens it (server/net/
 * server.c): the keyring needs the KEK file every node is given. */
static int open_pg(const cli_data_options *opt, cli_data *out, att_error *e, FILE *err)
{
    if (!srv_pg_is_uri(opt->store_uri)) {
        fprintf(err, "attune: --store: not a PostgreSQL URI (postgresql://USER@HOST:PORT/DB)\n");
        return -1;
    }
    if (!opt->kek_file) {
        fprintf(err, "attune: --store needs --kek-file: the key-encryption key every node of the "
                     "cluster is given\n");
        return -1;
    }
    /* DATA holds only this machine's secret.key here; made like the
     * server makes it. */
    if (opt->create && mkdir(opt->data_dir, 0700) < 0 && errno != EEXIST) {
        fprintf(err, "attune: cannot create the data directory %s: %s\n", opt->data_dir,
                strerror(errno));
        return -1;
    }
    if (srv_secure_data_dir(opt->data_dir, e) < 0) {
        fprintf(err, "attune: %s\n", e->message);
        return -1;
    }
    srv_pg_store_options po = {.uri = opt->store_uri, .node_name = CLI_PG_NODE_NAME, .ws_url = ""};
    if (srv_keyring_open_pg(opt->store_uri, opt->kek_file, 1, &out->keys, e) < 0 ||
        srv_store_open_pg(&po, out->keys, &out->store, e) < 0 ||
        (opt->want_accounts && srv_accounts_open_pg(opt->store_uri, 1, &out->accounts, e) < 0) ||
        (opt->want_invites && srv_invites_open_pg(opt->store_uri, &out->invites, e) < 0)) {
        fprintf(err, "attune: %s\n", e->message);
        return -1;
    }
    return 0;
}

int cli_data_open(const cli_data_options *opt, cli_data *out, FILE *err)
{
    memset(out, 0, sizeof *out);
    out->data_dir = opt->data_dir;
    out->store_uri = opt->store_uri;
    if (!opt->data_dir) {
        fprintf(err, "attune: --data DIR is required\n");
        return -1;
    }
    att_error e = {0};
    int rc = opt->store_uri ? open_pg(opt, out, &e, err) : open_sqlite(opt, out, &e, err);
    if (rc == 0 && opt->want_audit)
        rc = cli_data_open_audit(out, err);
    if (rc == 0 && opt->want_key) {
        char kpath[4096];
        const char *key_file = opt->key_file;
        if (!key_file) {
            snprintf(kpath, sizeof kpath, "%s/secret.key", opt->data_dir);
            key_file = kpath;
        }
        if ((rc = srv_token_key_load(key_file, &out->key, &e)) < 0)
            fprintf(err, "attune: %s\n", e.message);
    }
    if (rc == 0 && opt->want_catalog) {
        const char *dir = opt->protocol_dir ? opt->protocol_dir : ATTUNE_PROTOCOL_DIR;
        if ((rc = att_catalog_load_dir(dir, &out->catalog, &e)) < 0)
            fprintf(err, "attune: protocol catalog %s: %s\n", dir, e.message);
    }
    if (rc < 0) {
        cli_data_close(out);
        return -1;
    }
    return 0;
}

int cli_data_open_audit(cli_data *d, FILE *err)
{
    if (d->audit)
        return 0;
    att_error e = {0};
    int rc = d->store_uri ? srv_audit_open_pg(d->store_uri, d->keys, &d->audit, &e)
                          : srv_audit_open(d->data_dir, d->keys, &d->audit, &e);
    if (rc < 0) {
        fprintf(err, "attune: %s\n", e.message);
        return -1;
    }
    return 0;
}

void cli_data_close(cli_data *d)
{
    srv_audit_close(d->audit);
    srv_invites_close(d->invites);
    srv_accounts_close(d->accounts);
    srv_store_close(d->store);
    srv_keyring_close(d->keys);
    att_catalog_free(d->catalog);
    memset(d, 0, sizeof *d);
}
