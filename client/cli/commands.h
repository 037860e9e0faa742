/* commands.h - the `attune` subcommands. Each takes the words after its
 * name, prints user-facing output on stdout (errors on stderr, never logs)
 * and returns the process exit code (CLI_EXIT_*). Runs on main's thread. */
#ifndef CLI_COMMANDS_H
#define CLI_COMMANDS_H

#include <stdio.h>
#include "store.h"

int cli_cmd_room(int argc, char **argv);
int cli_cmd_token(int argc, char **argv);
int cli_cmd_replay(int argc, char **argv);
int cli_cmd_join(int argc, char **argv);
int cli_cmd_therapist(int argc, char **argv);
int cli_cmd_keys(int argc, char **argv);
int cli_cmd_verify(int argc, char **argv);
int cli_cmd_backup(int argc, char **argv);
int cli_cmd_restore(int argc, char **argv);

/* cmd_verify.c: checks `room` (NULL: every room) of an open store and
 * prints one line each (`attune verify`, `attune restore`); CLI_EXIT_FAIL
 * when one does not verify or cannot be checked. */
int cli_verify_rooms(srv_store *store, const char *room, FILE *out);

#endif
