/* datadir.c - opening the data directory for the offline subcommands. */
#include "datadir.h"

#include <string.h>
#include <sys/stat.h>
#include "secure_start.h"

int cli_data_open(const char *data_dir, const char *kek_file, int create, int want_key,
                  const char *key_file, int want_catalog, const char *protocol_dir, cli_data *out,
                  FILE *err)
{
    memset(out, 0, sizeof *out);
    char path[4096];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/attune.db", data_dir) >= (int)sizeof path) {
        fprintf(err, "attune: data directory path too long\n");
        return -1;
    }
    att_error me = {0};
    if (srv_secure_data_dir(data_dir, &me) < 0) {
        fprintf(err, "attune: %s\n", me.message);
        return -1;
    }
    if (!create && stat(path, &st) != 0) {
        fprintf(err, "attune: no event store at %s (create a room first, or check --data)\n", path);
        return -1;
    }
    att_error e = {0};
    /* The keys first: the store borrows them. The KEK is made only for a
     * data directory whose keys.db holds no key yet (a new one, or one of
     * the formats before per-room keys, which the store then migrates). */
    if (srv_keyring_open(data_dir, kek_file, 1, &out->keys, &e) < 0 ||
        srv_store_open(data_dir, out->keys, &out->store, &e) < 0) {
        fprintf(err, "attune: %s\n", e.message);
        cli_data_close(out);
        return -1;
    }
    if (want_key) {
        char kpath[4096];
        if (!key_file) {
            snprintf(kpath, sizeof kpath, "%s/secret.key", data_dir);
            key_file = kpath;
        }
        if (srv_token_key_load(key_file, &out->key, &e) < 0) {
            fprintf(err, "attune: %s\n", e.message);
            cli_data_close(out);
            return -1;
        }
    }
    if (want_catalog) {
        const char *dir = protocol_dir ? protocol_dir : ATTUNE_PROTOCOL_DIR;
        if (att_catalog_load_dir(dir, &out->catalog, &e) < 0) {
            fprintf(err, "attune: protocol catalog %s: %s\n", dir, e.message);
            cli_data_close(out);
            return -1;
        }
    }
    return 0;
}

void cli_data_close(cli_data *d)
{
    srv_store_close(d->store);
    srv_keyring_close(d->keys);
    att_catalog_free(d->catalog);
    memset(d, 0, sizeof *d);
}
