/* test_options.c - the one option parser of attune-server and attune
 * (attune/options.h): each typed kind stored where the table says, the
 * callback's options and positional words in order, every error message,
 * config text (comments, flags, line numbers), and the help lines. */
#include "check.h"

#include "attune/options.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[8];
    int flag;
    int port;
    int64_t big;
    size_t bytes;
    double rate;
    /* what the callback saw, "index=value;" each */
    char seen[256];
    int stop_at; /* the callback answers 1 at this index (-2: never) */
} target;

static const att_option opts[] = {
    {"name", "NAME", "a name", "none", ATT_OPT_TEXT, offsetof(target, name), 8, 0, 0},
    {"flag", NULL, "a flag", "off", ATT_OPT_FLAG, offsetof(target, flag), 0, 0, 0},
    {"port", "N", "a port", "8080", ATT_OPT_INT, offsetof(target, port), 0, 0, 65535},
    {"big", "N", "a large number", NULL, ATT_OPT_INT64, offsetof(target, big), 0, 1, 1e12},
    {"bytes", "N", "a size", "", ATT_OPT_SIZE, offsetof(target, bytes), 0, 4096, 1e9},
    {"rate", "N", "a rate", "20", ATT_OPT_DOUBLE, offsetof(target, rate), 0, 0.001, 1e6},
    {"call", "V", "handed to the callback", NULL, ATT_OPT_CALL, 0, 0, 0, 0},
    {"hello", NULL, "a flag for the callback", NULL, ATT_OPT_CALL, 0, 0, 0, 0},
    {"config", "FILE", "not a setting in a file", NULL, ATT_OPT_CALL, 0, 0, 0, 0},
    {"help", NULL, "print this help", "", ATT_OPT_CALL, 0, 0, 0, 0},
};
static const att_option_table table = {opts, sizeof opts / sizeof opts[0], 2};

static int seen(void *arg, int index, const char *value, att_error *err)
{
    target *t = arg;
    (void)err;
    size_t n = strlen(t->seen);
    snprintf(t->seen + n, sizeof t->seen - n, "%d=%s;", index, value ? value : "(null)");
    return index == t->stop_at ? 1 : 0;
}

static int parse_words(target *t, const char *line, att_error *err)
{
    char buf[512], *words[32];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *w = strtok(buf, " "); w && n < 32; w = strtok(NULL, " "))
        words[n++] = w;
    memset(t, 0, sizeof *t);
    t->stop_at = -2;
    memset(err, 0, sizeof *err);
    return att_options_parse_argv(&table, n, words, t, seen, t, err);
}

static void check_error(const char *line, const char *want)
{
    target t;
    att_error err;
    int rc = parse_words(&t, line, &err);
    CHECK_MSG(rc == -ATT_ERR_BAD_MESSAGE, "%s: rc %d", line, rc);
    CHECK_STR(err.message, want);
}

static void test_argv_typed(void)
{
    target t;
    att_error err;
    CHECK_INT(parse_words(&t,
                          "--name ab --flag --port=443 --big 1e12 --bytes 4096.9 --rate 0.5 "
                          "--call=x --hello one -- --two",
                          &err),
              0);
    CHECK_STR(t.name, "ab");
    CHECK_INT(t.flag, 1);
    CHECK_INT(t.port, 443);
    CHECK_INT(t.big, 1000000000000LL);
    CHECK_INT(t.bytes, 4096); /* a number's whole part */
    CHECK(t.rate == 0.5);
    /* The callback's options and the positional words, in order; after
     * `--` a word that looks like an option is a word. */
    CHECK_STR(t.seen, "6=x;7=(null);-1=one;-1=--two;");
    CHECK_INT(parse_words(&t, "-", &err), 0);
    CHECK_STR(t.seen, "-1=-;");
    CHECK_INT(parse_words(&t, "--name=", &err), 0);
    CHECK_STR(t.name, "");
}

static void test_argv_errors(void)
{
    check_error("--nope", "unknown option --nope (see --help)");
    check_error("--nope=1", "unknown option --nope (see --help)");
    check_error("-x", "unknown option -x (see --help)");
    check_error("--flag=1", "--flag takes no value");
    check_error("--port", "--port needs a value (N)");
    check_error("a b c", "unexpected argument 'c' (see --help)");
    check_error("--port 65536", "--port: expected a number in 0..65535, got '65536'");
    check_error("--port 80x", "--port: expected a number in 0..65535, got '80x'");
    check_error("--rate 0", "--rate: expected a number in 0.001..1000000, got '0'");
    check_error("--big 2e12", "--big: expected a number in 1..1000000000000, got '2e12'");
    check_error("--rate inf", "--rate: expected a number in 0.001..1000000, got 'inf'");
    check_error("--name abcdefgh", "--name: value too long");
}

static void test_argv_help_and_stop(void)
{
    target t;
    att_error err;
    /* -h is --help when the table has one; the callback may stop there. */
    memset(&t, 0, sizeof t);
    t.stop_at = 9;
    char *words[] = {"--port", "1", "-h", "--nope"};
    CHECK_INT(att_options_parse_argv(&table, 4, words, &t, seen, &t, &err), 1);
    CHECK_STR(t.seen, "9=(null);");
    CHECK_INT(t.port, 1);
    /* Without a help option, -h is unknown. */
    att_option_table no_help = {opts, 2, 0};
    char *h[] = {"-h"};
    CHECK_INT(att_options_parse_argv(&no_help, 1, h, &t, NULL, NULL, &err), -ATT_ERR_BAD_MESSAGE);
    CHECK_STR(err.message, "unknown option -h (see --help)");
    /* No target: values are checked, not kept. */
    char *check_only[] = {"--port", "7", "--name", "x"};
    CHECK_INT(att_options_parse_argv(&table, 4, check_only, NULL, NULL, NULL, &err), 0);
    char *bad[] = {"--port", "-7"};
    CHECK_INT(att_options_parse_argv(&table, 2, bad, NULL, NULL, NULL, &err), -ATT_ERR_BAD_MESSAGE);
}

static int parse_text(target *t, const char *text, att_error *err)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    memset(t, 0, sizeof *t);
    t->stop_at = -2;
    memset(err, 0, sizeof *err);
    return att_options_parse_text(&table, buf, "f.conf", t, seen, t, err);
}

static void test_text(void)
{
    target t;
    att_error err;
    CHECK_INT(parse_text(&t,
                         "# a comment\n"
                         "\n"
                         "  name =  ab  # trailing comment\r\n"
                         "port=9\n"
                         "flag = no\n"
                         "hello = yes\n"
                         "call = x y\n"
                         "rate = 2",
                         &err),
              0);
    CHECK_STR(t.name, "ab");
    CHECK_INT(t.port, 9);
    CHECK_INT(t.flag, 0); /* a value other than true, yes or 1 leaves a flag unset */
    CHECK(t.rate == 2);
    CHECK_STR(t.seen, "7=(null);6=x y;");
    CHECK_INT(parse_text(&t, "flag\n", &err), 0);
    CHECK_INT(t.flag, 1);
    CHECK_INT(parse_text(&t, "flag = true", &err), 0);
    CHECK_INT(t.flag, 1);

    CHECK_INT(parse_text(&t, "port = 1\n\nnope = 2\n", &err), -ATT_ERR_BAD_MESSAGE);
    CHECK_STR(err.message, "f.conf:3: unknown setting 'nope'");
    CHECK_INT(parse_text(&t, "help\n", &err), -ATT_ERR_BAD_MESSAGE);
    CHECK_STR(err.message, "f.conf:1: unknown setting 'help'");
    CHECK_INT(parse_text(&t, "config = other.conf\n", &err), -ATT_ERR_BAD_MESSAGE);
    CHECK_STR(err.message, "f.conf:1: unknown setting 'config'");
    CHECK_INT(parse_text(&t, "# x\nport\n", &err), -ATT_ERR_BAD_MESSAGE);
    CHECK_STR(err.message, "f.conf:2: 'port' needs a value");
    CHECK_INT(parse_text(&t, "port = 99999\n", &err), -ATT_ERR_BAD_MESSAGE);
    CHECK_STR(err.message, "--port: expected a number in 0..65535, got '99999'");
    CHECK_INT(parse_text(&t, "", &err), 0);
}

static void test_numbers(void)
{
    att_error err;
    int64_t v = 0;
    CHECK_INT(att_option_int64("n", "-5", -10, 10, &v, &err), 0);
    CHECK_INT(v, -5);
    CHECK_INT(att_option_int64("n", "1.5", 0, 10, &v, &err), -ATT_ERR_BAD_MESSAGE);
    CHECK_STR(err.message, "--n: expected an integer in 0..10, got '1.5'");
    CHECK_INT(att_option_int64("n", "", 0, 10, &v, &err), -ATT_ERR_BAD_MESSAGE);
    CHECK_INT(att_option_int64("n", "99999999999999999999", 0, INT64_MAX, &v, &err),
              -ATT_ERR_BAD_MESSAGE);
    CHECK(att_options_find(&table, "rate") == &opts[5]);
    CHECK(att_options_find(&table, "rat") == NULL);
}

static void test_help(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    att_option_table two = {opts, 3, 0};
    att_options_print_help(&two, 12, out);
    fclose(out);
    CHECK_STR(text, "  --name NAME  a name [none]\n"
                    "  --flag       a flag [off]\n"
                    "  --port N     a port [8080]\n");
    free(text);
}

int main(void)
{
    test_argv_typed();
    test_argv_errors();
    test_argv_help_and_stop();
    test_text();
    test_numbers();
    test_help();
    return check_done("options");
}
