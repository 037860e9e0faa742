/* datadir.h - what the offline subcommands (room, token, replay) open from
 * the server's data directory: the keyring (DATA/keys.db, and the KEK
 * beside the data directory), the event store (DATA/attune.db), the
 * invitation key (DATA/secret.key unless --key-file) and the protocol
 * catalog. Same files and defaults as attune-server.
 *
 * Ownership: cli_data owns the keyring, the store and the catalog it
 * opened; release them with cli_data_close. */
#ifndef CLI_DATADIR_H
#define CLI_DATADIR_H

#include <stdio.h>
#include "attune/catalog.h"
#include "clock.h"
#include "store.h"
#include "token.h"

#define CLI_DEFAULT_TOKEN_TTL_S (7 * 24 * 3600)
#define CLI_DEFAULT_BASE_URL "http://127.0.0.1:8080"

typedef struct {
    srv_keyring *keys;    /* owned: the rooms' keys (keyring.h); the store borrows them */
    srv_store *store;     /* owned */
    att_catalog *catalog; /* owned; NULL unless requested */
    srv_token_key key;    /* valid when want_key was set */
} cli_data;

/* The --kek-file option every subcommand that opens a data directory
 * takes (its value goes to cli_data_open). */
#define CLI_KEK_FILE_OPTION                                                                        \
    {                                                                                              \
        "kek-file", "FILE",                                                                        \
            "the key-encryption key [$CREDENTIALS_DIRECTORY/attune-kek, else DATA.kek beside DIR]" \
    }

/* Opens the data directory. An existing database is required unless
 * create is set (room create makes the directory and the database like the
 * server does). kek_file NULL means the keyring's default
 * (srv_kek_default_path: the credentials directory's, else DATA.kek);
 * key_file NULL means DATA/secret.key; protocol_dir NULL means the
 * built-in protocol directory. Returns 0, or -1 after printing the reason
 * to err. */
int cli_data_open(const char *data_dir, const char *kek_file, int create, int want_key,
                  const char *key_file, int want_catalog, const char *protocol_dir, cli_data *out,
                  FILE *err);
void cli_data_close(cli_data *d);

#endif
