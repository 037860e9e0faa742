/* cmd_therapist.c - `attune therapist add|list|passwd|remove`: the staff
 * accounts (therapists, and supervisors with --supervisor) in the server's
 * data directory (server/store/accounts.h), made on the server machine. A
 * password is read from the terminal with echo off (typed twice), or as one
 * line from stdin when stdin is not a terminal. */
#include "commands.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "accounts.h"
#include "args.h"
#include "datadir.h"

#define PASSWORD_BUF (SRV_PASSWORD_MAX_BYTES + 2)

static const cli_option add_options[] = {
    {"data", "DIR", "the server's data directory (created when missing) [required]"},
    {"supervisor", NULL, "a supervisor's account (a named observer therapists invite) [therapist]"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command add_cmd = {
    "attune therapist add NAME --data DIR [--supervisor]",
    "Creates a therapist account for the dashboard (with --supervisor, a supervisor's:\n"
    "a named observer therapists invite to their rooms). The password is read from the\n"
    "terminal (twice, not shown), or as one line from stdin when it is not a terminal;\n"
    "at least 10 characters. NAME: 1..64 of A-Z a-z 0-9 . _ - @. Works while\n"
    "attune-server runs on the same directory.",
    add_options,
    (int)(sizeof add_options / sizeof add_options[0]),
    1,
    1};

static const cli_option passwd_options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command passwd_cmd = {
    "attune therapist passwd NAME --data DIR",
    "Sets a new password for an account (read like add's). Every login session of the\n"
    "account ends, in a running attune-server within a second, with the live views\n"
    "opened through them.",
    passwd_options,
    (int)(sizeof passwd_options / sizeof passwd_options[0]),
    1,
    1};

static const cli_option list_options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command list_cmd = {"attune therapist list --data DIR",
                                     "Lists the therapist accounts: name and creation time (UTC).",
                                     list_options,
                                     (int)(sizeof list_options / sizeof list_options[0]),
                                     0,
                                     0};

static const cli_option remove_options[] = {
    {"data", "DIR", "the server's data directory [required]"},
    CLI_KEK_FILE_OPTION,
    CLI_STORE_OPTION,
};
static const cli_command remove_cmd = {
    "attune therapist remove NAME --data DIR",
    "Removes an account; its login sessions end (in a running attune-server within a\n"
    "second). Its rooms stay on no dashboard: an account added again under that name\n"
    "is a new account and does not get them.",
    remove_options,
    (int)(sizeof remove_options / sizeof remove_options[0]),
    1,
    1};

/* Reads one line into buf (without the newline). Returns its length, or -1
 * at end of input or when the line does not fit. */
static long read_line(FILE *in, char *buf, size_t size)
{
    if (!fgets(buf, (int)size, in))
        return -1;
    size_t n = strlen(buf);
    if (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    else if (!feof(in))
        return -1; /* longer than the buffer */
    if (n && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return (long)n;
}

/* Prompts on stderr and reads a line from the terminal on stdin without
 * echoing it. */
static long read_hidden(const char *prompt, char *buf, size_t size)
{
    struct termios old, quiet;
    if (tcgetattr(STDIN_FILENO, &old) != 0)
        return -1;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    fputs(prompt, stderr);
    fflush(stderr);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
        return -1;
    long n = read_line(stdin, buf, size);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    return n;
}

/* The new password into buf; its length, or -1 after saying why. */
static long get_password(char *buf, size_t size)
{
    long n;
    if (isatty(STDIN_FILENO)) {
        char again[PASSWORD_BUF];
        n = read_hidden("password (at least 10 characters): ", buf, size);
        long m = n >= 0 ? read_hidden("the same password again: ", again, sizeof again) : -1;
        int same = n >= 0 && m == n && memcmp(buf, again, (size_t)n) == 0;
        OPENSSL_cleanse(again, sizeof again);
        if (n < 0 || m < 0) {
            fprintf(stderr, "attune: no password read\n");
            return -1;
        }
        if (!same) {
            fprintf(stderr, "attune: the two passwords differ\n");
            return -1;
        }
    } else {
        n = read_line(stdin, buf, size);
        if (n < 0) {
            fprintf(stderr,
                    "attune: expected the password as one line on stdin (at most %d "
                    "bytes)\n",
                    SRV_PASSWORD_MAX_BYTES);
            return -1;
        }
    }
    att_error e = {0};
    if (srv_password_check(buf, (size_t)n, &e) < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        return -1;
    }
    return n;
}

static int parse(const cli_command *cmd, int argc, char **argv, cli_args *a, int *done)
{
    *done = 0;
    if (cli_parse(cmd, argc, argv, a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a->help) {
        cli_print_help(cmd, stdout);
        *done = 1;
        return CLI_EXIT_OK;
    }
    if (!cli_get(cmd, a, "data")) {
        fprintf(stderr, "attune: --data DIR is required\n");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* Opens the store (so its tables exist, as the server makes them) and the
 * accounts: the data directory's, or with --store the shared database's. */
static int open_accounts(const cli_command *cmd, const cli_args *a, int create, cli_data *d,
                         srv_accounts **acc)
{
    cli_data_options opt = cli_data_options_of(cmd, a);
    opt.create = create;
    opt.want_accounts = 1;
    if (cli_data_open(&opt, d, stderr) < 0)
        return -1;
    *acc = d->accounts;
    return 0;
}

static int therapist_add(int argc, char **argv)
{
    cli_args a;
    int done;
    int rc = parse(&add_cmd, argc, argv, &a, &done);
    if (rc != CLI_EXIT_OK || done)
        return rc;
    const char *name = a.positional[0];
    if (!srv_account_name_valid(name)) {
        fprintf(stderr, "attune: a name is 1..64 characters of A-Z a-z 0-9 . _ - @\n");
        return CLI_EXIT_USAGE;
    }
    char password[PASSWORD_BUF];
    long n = get_password(password, sizeof password);
    if (n < 0) {
        OPENSSL_cleanse(password, sizeof password);
        return CLI_EXIT_USAGE;
    }
    srv_account_kind kind =
        cli_get(&add_cmd, &a, "supervisor") ? SRV_ACCOUNT_SUPERVISOR : SRV_ACCOUNT_THERAPIST;
    cli_data d;
    srv_accounts *acc = NULL;
    if (open_accounts(&add_cmd, &a, 1, &d, &acc) < 0) {
        OPENSSL_cleanse(password, sizeof password);
        return CLI_EXIT_FAIL;
    }
    att_error e = {0};
    rc = srv_accounts_add_kind(acc, name, kind, password, (size_t)n, NULL, &e);
    OPENSSL_cleanse(password, sizeof password);
    cli_data_close(&d);
    if (rc < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        return rc == -ATT_ERR_BAD_MESSAGE ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    printf("%s %s added\n", srv_account_kind_name(kind), name);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int therapist_passwd(int argc, char **argv)
{
    cli_args a;
    int done;
    int rc = parse(&passwd_cmd, argc, argv, &a, &done);
    if (rc != CLI_EXIT_OK || done)
        return rc;
    const char *name = a.positional[0];
    cli_data d;
    srv_accounts *acc = NULL;
    if (open_accounts(&passwd_cmd, &a, 0, &d, &acc) < 0)
        return CLI_EXIT_FAIL;
    /* Asked before the password is typed, so nobody types one for nothing. */
    att_error e = {0};
    int exists = srv_accounts_exists(acc, name, &e);
    if (exists != 1) {
        if (exists < 0)
            fprintf(stderr, "attune: %s\n", e.message);
        else
            fprintf(stderr, "attune: no account named %s\n", name);
        cli_data_close(&d);
        return exists < 0 ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
    }
    char password[PASSWORD_BUF];
    long n = get_password(password, sizeof password);
    if (n < 0) {
        OPENSSL_cleanse(password, sizeof password);
        cli_data_close(&d);
        return CLI_EXIT_USAGE;
    }
    rc = srv_accounts_set_password(acc, name, password, (size_t)n, &e);
    OPENSSL_cleanse(password, sizeof password);
    cli_data_close(&d);
    if (rc < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        return rc == -ATT_ERR_BAD_MESSAGE || rc == -ATT_ERR_NOT_FOUND ? CLI_EXIT_USAGE
                                                                      : CLI_EXIT_FAIL;
    }
    printf("password of %s changed; its login sessions end\n", name);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int print_account(const srv_account *acct, void *arg)
{
    int *count = arg;
    time_t secs = (time_t)(acct->created_at / 1000);
    struct tm tm;
    char when[32] = "?";
    if (gmtime_r(&secs, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-32s %-10s %s\n", acct->name, srv_account_kind_name(acct->kind), when);
    (*count)++;
    return 0;
}

static int therapist_list(int argc, char **argv)
{
    cli_args a;
    int done;
    int rc = parse(&list_cmd, argc, argv, &a, &done);
    if (rc != CLI_EXIT_OK || done)
        return rc;
    cli_data d;
    srv_accounts *acc = NULL;
    if (open_accounts(&list_cmd, &a, 0, &d, &acc) < 0)
        return CLI_EXIT_FAIL;
    att_error e = {0};
    int count = 0;
    printf("%-32s %-10s %s\n", "NAME", "KIND", "CREATED (UTC)");
    rc = srv_accounts_list(acc, print_account, &count, &e);
    if (rc < 0)
        fprintf(stderr, "attune: %s\n", e.message);
    cli_data_close(&d);
    return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int therapist_remove(int argc, char **argv)
{
    cli_args a;
    int done;
    int rc = parse(&remove_cmd, argc, argv, &a, &done);
    if (rc != CLI_EXIT_OK || done)
        return rc;
    cli_data d;
    srv_accounts *acc = NULL;
    if (open_accounts(&remove_cmd, &a, 0, &d, &acc) < 0)
        return CLI_EXIT_FAIL;
    att_error e = {0};
    rc = srv_accounts_remove(acc, a.positional[0], &e);
    cli_data_close(&d);
    if (rc < 0) {
        fprintf(stderr, "attune: %s\n", e.message);
        return rc == -ATT_ERR_NOT_FOUND ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    printf("account %s removed\n", a.positional[0]);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cli_cmd_therapist(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "add") == 0)
        return therapist_add(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return therapist_list(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "passwd") == 0)
        return therapist_passwd(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "remove") == 0)
        return therapist_remove(argc - 1, argv + 1);
    FILE *out = (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0))
                    ? stdout
                    : stderr;
    fprintf(out, "usage: attune therapist add NAME --data DIR [--supervisor]   (password from the "
                 "terminal or stdin)\n"
                 "       attune therapist list --data DIR\n"
                 "       attune therapist passwd NAME --data DIR   (ends its login sessions)\n"
                 "       attune therapist remove NAME --data DIR\n");
    return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}
