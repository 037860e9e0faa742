/* commands.h - the `attune` subcommands. Each takes the words after its
 * name, prints user-facing output on stdout (errors on stderr, never logs)
 * and returns the process exit code (CLI_EXIT_*). Runs on main's thread. */
#ifndef CLI_COMMANDS_H
#define CLI_COMMANDS_H

int cli_cmd_room(int argc, char **argv);
int cli_cmd_token(int argc, char **argv);
int cli_cmd_replay(int argc, char **argv);
int cli_cmd_join(int argc, char **argv);
int cli_cmd_therapist(int argc, char **argv);
int cli_cmd_keys(int argc, char **argv);

#endif
