/* commands.h - the `attune` subcommands. Each takes the words after its
 * name, prints user-facing output on stdout (errors on stderr, never logs)
 * and returns the process exit code (CLI_EXIT_*). Runs on main's thread. */
#ifndef CLI_COMMANDS_H
#define CLI_COMMANDS_H

#include <stdio.h>
#include "audit.h"
#include "datadir.h"
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
int cli_cmd_audit(int argc, char **argv);

/* cmd_audit.c: records in the audit log of d (audit.h; opened by
 * cli_data_open_audit when it is not yet) that this command, as
 * "cli:<unix user>", did `action` to `room` (NULL: none); detail NULL or a
 * fixed word. 0, or -1 after printing why to err (the caller's work is
 * done either way; say so, do not undo it). */
int cli_audit_note(cli_data *d, srv_audit_action action, const char *room, const char *detail,
                   FILE *err);
/* The same for a command that holds no keyring: opens DATA's with kek_file
 * (NULL: the default), never creating a KEK. */
int cli_audit_note_kek(const char *data_dir, const char *kek_file, srv_audit_action action,
                       const char *room, const char *detail, FILE *err);

/* cmd_verify.c: checks `room` (NULL: every room) of an open store and
 * prints one line each (`attune verify`, `attune restore`); CLI_EXIT_FAIL
 * when one does not verify or cannot be checked. */
int cli_verify_rooms(srv_store *store, const char *room, FILE *out);

#endif
