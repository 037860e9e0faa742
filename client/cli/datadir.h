/* datadir.h - the one place the offline subcommands (room, token, replay,
 * therapist, verify, audit, restore) open what the server keeps: the
 * keyring, the event store, the accounts, the invitations and the audit
 * log, plus the invitation key and the protocol catalog. Same files and
 * defaults as attune-server:
 *   - without --store: DATA/keys.db (the KEK beside the data directory),
 *     DATA/attune.db;
 *   - with --store postgresql://...: the keyring, events, accounts,
 *     invitations and audit log of that shared database (every node's),
 *     with --kek-file required as for the server; DATA then holds only
 *     this machine's own secret.key.
 * The invitation key is DATA/secret.key unless --key-file.
 *
 * Ownership: cli_data owns everything it opened; release it with
 * cli_data_close. The option strings are borrowed (argv). */
#ifndef CLI_DATADIR_H
#define CLI_DATADIR_H

#include <stdio.h>
#include "args.h"
#include "attune/catalog.h"
#include "accounts.h"
#include "audit.h"
#include "clock.h"
#include "invites.h"
#include "store.h"
#include "token.h"

#define CLI_DEFAULT_TOKEN_TTL_S (7 * 24 * 3600)
#define CLI_DEFAULT_BASE_URL "http://127.0.0.1:8080"

/* The --kek-file and --store options of every subcommand that opens a data
 * directory (cli_data_options_of reads them). */
#define CLI_KEK_FILE_OPTION                                                                        \
    {                                                                                              \
        "kek-file", "FILE",                                                                        \
            "the key-encryption key [$CREDENTIALS_DIRECTORY/attune-kek, else DATA.kek beside "     \
            "DIR; "                                                                                \
            "required with --store]"                                                               \
    }
#define CLI_STORE_OPTION                                                                           \
    {                                                                                              \
        "store", "URI",                                                                            \
            "the shared PostgreSQL database (postgresql://USER@HOST:PORT/DB) the servers run on "  \
            "with --store [none: the SQLite files in DIR]"                                         \
    }

typedef struct {
    const char *data_dir;     /* required */
    const char *store_uri;    /* NULL: SQLite in data_dir */
    const char *kek_file;     /* NULL: the keyring's default (SQLite only) */
    const char *key_file;     /* NULL: DATA/secret.key */
    const char *protocol_dir; /* NULL: the built-in protocol directory */
    int create; /* make the data directory and database (room create, therapist add) */
    int want_key, want_catalog, want_accounts, want_invites, want_audit;
} cli_data_options;

typedef struct {
    srv_keyring *keys;      /* owned: the rooms' keys (keyring.h); the store borrows them */
    srv_store *store;       /* owned */
    att_catalog *catalog;   /* owned; NULL unless want_catalog */
    srv_accounts *accounts; /* owned; NULL unless want_accounts */
    srv_invites *invites;   /* owned; NULL unless want_invites */
    srv_audit *audit;       /* owned; NULL unless want_audit */
    srv_token_key key;      /* valid when want_key was set */
    const char *data_dir;   /* borrowed */
    const char *store_uri;  /* borrowed; NULL on SQLite */
} cli_data;

/* The data, store, kek-file, key-file and protocol-dir options of a
 * parsed command line (those the table has); the want_ flags are 0. */
cli_data_options cli_data_options_of(const cli_command *cmd, const cli_args *a);

/* 1 when the command line has --store (the message for a subcommand that
 * does not work there is the caller's). */
int cli_data_on_pg(const cli_data_options *opt);

/* Opens what opt asks for. An existing SQLite database is required unless
 * create is set (room create makes the directory and the database like the
 * server does); with --store the database must exist (its tables are made
 * when missing). Returns 0, or -1 after printing the reason to err. */
int cli_data_open(const cli_data_options *opt, cli_data *out, FILE *err);
/* Opens d->audit when it is not open yet (a subcommand that records what
 * it did). 0, or -1 after printing the reason to err. */
int cli_data_open_audit(cli_data *d, FILE *err);
/* "DIR" or "the database" (the URI may hold a password): where a room was
 * not found, for messages. */
const char *cli_data_where(const cli_data *d);
void cli_data_close(cli_data *d);

#endif
