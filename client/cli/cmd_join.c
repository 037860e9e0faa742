/* cmd_join.c - `attune join URL`: a terminal participant (protocol 2).
 * Connects to the invitation's server with libwebsockets (wsconn.h:
 * ws://HOST:PORT/ws?room=ID, or wss:// for an https:// link, subprotocol
 * attune.v1; the room from the link, or for a link without one from the
 * hello ack), sends hello, shows the events and the state as they arrive
 * (seqs count in this member's own audience: 1, 2, 3... with no gap), asks
 * a partner the safety check-in while the room is checking in, and when it
 * is this member's turn asks the step's inputs one line at a time from the
 * state's input descriptions, then sends the turn. Lines starting with /
 * are commands (/help lists them).
 *
 * Standard input may be a pipe: lines are queued and each answer waits
 * until a question is open, so a script can feed a whole session; at the
 * end of input the client waits for its outstanding replies and leaves.
 *
 * Every command that records something carries a random command_id
 * (PROTOCOL.md section 4) and is kept until its ack or error. When the
 * connection drops (the server restarting, the room moving to another
 * node: bye shutdown or room_moved, close 1001 or 4503, or no close at
 * all), join reconnects to /ws?room=ID with a bounded backoff
 * (RECONNECT_FIRST_MS doubling to RECONNECT_MAX_MS, given up
 * RECONNECT_GIVE_UP_MS after its last hello ack), resumes from the last seq
 * it saw (the transcript goes on with no gap and no repeat) and, once the
 * replay has ended, sends every unanswered command again with its
 * command_id: the server records it once, whether or not the first one got
 * in. A refusal (4401, 4409) stays final. */
#include "commands.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>
#include "args.h"
#include "attune/msg.h"
#include "clock.h"
#include "invite.h"
#include "join_form.h"
#include "term.h"
#include "transcript.h"
#include "wsconn.h"

static const cli_option options[] = {
    {"color", NULL, "always use ANSI colours"},
    {"insecure", NULL,
     "with an https:// link, do not check the server's TLS certificate (only for a test "
     "server with a self-signed certificate)"},
    {"no-color", NULL, "never use ANSI colours (default: only when stdout is a terminal)"},
    {"resume-from", "SEQ",
     "ask the server to replay only the events after SEQ, counted as this client numbers "
     "them (your own events 1, 2, 3...) [0: all]"},
};
static const cli_command join_cmd = {
    "attune join [--no-color] [--insecure] URL | -",
    "Takes part in a session from the terminal with an invitation URL\n"
    "(http://HOST:PORT/?room=ROOM#token=... or https://...; an https:// link connects over\n"
    "TLS and checks the server's certificate): given as URL, or `-` to read it from\n"
    "the first line of standard input, or left out to take it from the environment\n"
    "variable ATTUNE_LINK. The link is a secret: on a shared machine prefer `-` or\n"
    "ATTUNE_LINK, since other users can read a command line (ps, /proc). Shows what\n"
    "happens in the room; when it is your turn it asks the step's questions one line\n"
    "at a time.\n"
    "Commands:\n"
    "partners:\n"
    "  /consent            accept the consent notice (again, after /withdraw)\n"
    "  /withdraw           withdraw your consent (the session pauses)\n"
    "  /private TEXT       a private message to your therapist (only your therapist sees it)\n"
    "  /ask                ask for a private word with your therapist (no reason given)\n"
    "  /pause [note]       ask for a pause\n"
    "  /repair [#ID] [text]   a repair attempt, optionally for rupture ID\n"
    "  /accept N           accept repair attempt N\n"
    "  /moment N           answer repair attempt N: \"Thank you, I need a moment\"\n"
    "therapist:\n"
    "  /pause /resume /advance /back /swap /end    steer the exercise\n"
    "  /proceed            begin the joint work after a held safety check-in\n"
    "  /private a|b TEXT   a private message to partner A or B\n"
    "  /note TEXT [#ID|#SN]   a private note, optionally on rupture ID or suspicion N\n"
    "  /confirm N [note]  /dismiss N [note]    decide the detector's suspicion N (SN)\n"
    "  /mark KIND MARKER WHO WITH [note]  mark a 3RS rupture\n"
    "  /fix ID STRATEGY [note]   record how rupture ID was repaired\n"
    "  /ack N              acknowledge repair attempt N\n"
    "everyone:\n"
    "  /state (where the session is; the therapist also sees suspicions and ruptures)\n"
    "  /cancel (start the current questions again)  /help  /quit\n"
    "Standard input may be a pipe: each answer line waits for its question. While a\n"
    "partner answers a step's questions, a content-free typing signal (at most every\n"
    "10 s) tells the server they are composing, so it is not taken for silence.\n"
    "If the connection drops (the server restarts, the session moves to another\n"
    "server), join connects again for up to a minute, resumes where it was and sends\n"
    "again what the server had not confirmed; each command carries a random id, so\n"
    "the server records it once.",
    options,
    (int)(sizeof options / sizeof options[0]),
    0,
    1};

/* The link's first line of standard input, read a byte at a time so that
 * the answers after it stay unread for the session. */
static int read_link_line(char *out, size_t size)
{
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n')
            break;
        if (n + 1 >= size)
            return -1;
        out[n++] = c;
    }
    while (n && (out[n - 1] == '\r' || out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    out[n] = '\0';
    return n ? 0 : -1;
}

#define MAX_PENDING 64
/* Reconnecting after a drop: the first wait, the longest, and how long
 * after the last hello ack it gives up. A node that keeps answering 4503
 * (the room still held elsewhere) does not restart the clock. */
#define RECONNECT_FIRST_MS 200
#define RECONNECT_MAX_MS 5000
#define RECONNECT_GIVE_UP_MS 60000
#define MAX_LINE 65536
#define DRAIN_MS 400
#define QUIT_WAIT_MS 3000
/* how long the close handshake may take when leaving */
#define CLOSE_WAIT_MS 2000
/* `typing` (composing, content-free) at most this often */
#define TYPING_EVERY_MS 10000

typedef enum { REQ_HELLO, REQ_TURN, REQ_CHECKIN, REQ_TYPING, REQ_OTHER } req_kind;

typedef struct line_node {
    struct line_node *next;
    char text[];
} line_node;

typedef struct {
    cli_wsconn *ws; /* NULL until connected */
    int insecure;   /* --insecure: no certificate checks */
    int color;
    int interactive;
    FILE *out;
    int64_t resume_from;
    int64_t last_seq; /* the highest seq seen (in this member's audience) */
    /* The room for the socket's URL (/ws?room=ID, by which a proxy routes):
     * the link's, or the first hello ack's for a link without one. */
    char room[ATT_ROOM_ID_BYTES + 1];
    const char *token; /* the invitation's (borrowed), for each hello */
    /* from the server */
    json_t *ack;   /* hello ack (owned) */
    json_t *state; /* latest state (owned) */
    char role[16];
    int authed;
    cli_transcript tr;
    int tr_ready;
    /* the current step's questions, or the safety check-in's */
    cli_form form;
    int form_checkin;      /* the form asks the check-in, not a step */
    json_t *checkin_step;  /* the check-in as a step with choice inputs (owned) */
    char checkin_note[16]; /* the input name of the check-in's note */
    int checkin_asked;     /* the check-in form was opened (until it is answered or dropped) */
    int waiting_shown;     /* the neutral waiting text after this partner's check-in */
    int held_shown;        /* the therapist was told that the check-in holds the session */
    int64_t typing_at;     /* when `typing` was last sent (monotonic ms), 0 = never */
    char sent_key[160];    /* the step a turn was sent for */
    char shown_key[160];
    int consent_shown;
    /* stdin */
    char *in;
    size_t in_len, in_cap;
    int stdin_eof;
    int stdin_failed; /* a read of standard input failed */
    line_node *q_head, *q_tail;
    /* requests awaiting ack/error, in order */
    struct {
        unsigned id; /* the reply id it was last sent with; 0: waits for a resend */
        req_kind kind;
        json_t *cmd; /* a command (with its command_id, without id): kept for a resend */
    } pending[MAX_PENDING];
    int n_pending;
    unsigned next_id;
    int turn_pending;
    int resumed;        /* this connection's replay has ended (its first state) */
    int64_t down_since; /* no hello acked since (monotonic ms); 0 while joined */
    int64_t backoff_ms; /* the next wait before reconnecting */
    /* leaving */
    int quit;
    int exit_code;
    int64_t quit_deadline; /* ms; 0 = not leaving */
} join_session;

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* 1 when a message of this type records something (it takes a command id). */
static int is_command(const json_t *msg)
{
    const char *type = sget(msg, "type");
    return type && strcmp(type, "hello") != 0 && strcmp(type, "ping") != 0 &&
           strcmp(type, "typing") != 0;
}

/* A fresh command id: 16 random bytes in base64url (22 characters). */
static int new_command_id(char out[23])
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char b[18] = {0};
    if (RAND_bytes(b, 16) != 1)
        return -1;
    int o = 0;
    for (int i = 0; i < 18 && o < 22; i += 3) {
        unsigned v = (unsigned)b[i] << 16 | (unsigned)b[i + 1] << 8 | b[i + 2];
        for (int k = 3; k >= 0 && o < 22; k--)
            out[o++] = b64url[(v >> (6 * k)) & 63];
    }
    out[22] = '\0';
    return 0;
}

/* Sends pending entry i with a fresh reply id. 0, or -1 when the
 * connection is closed (the loop reports it; a command stays for the
 * resend) or cannot take it. */
static int transmit(join_session *s, int i, json_t *msg)
{
    unsigned id = ++s->next_id;
    char idbuf[16];
    snprintf(idbuf, sizeof idbuf, "c%u", id);
    json_t *wire = json_copy(msg);
    if (wire)
        json_object_set_new(wire, "id", json_string(idbuf));
    size_t len = 0;
    char *text = wire ? att_json_dump(wire, &len) : NULL;
    json_decref(wire);
    int code;
    const char *reason;
    if (text && cli_wsconn_closed(s->ws, &code, &reason)) {
        free(text); /* the loop reports the close */
        return -1;
    }
    if (!text || cli_wsconn_send_text(s->ws, text, len) < 0) {
        free(text);
        fprintf(s->out, "attune: cannot send to the server\n");
        s->quit = 1;
        s->exit_code = CLI_EXIT_FAIL;
        return -1;
    }
    free(text);
    s->pending[i].id = id;
    return 0;
}

/* Sends {"type":type, "id":..., ...members} (members stolen); a command
 * gets its command_id and is kept until it is answered. */
static int send_msg(join_session *s, req_kind kind, json_t *msg)
{
    if (!msg)
        return -1;
    if (s->n_pending == MAX_PENDING) {
        fprintf(s->out, "  (too many requests waiting for the server; try again)\n");
        json_decref(msg);
        return -1;
    }
    int command = is_command(msg);
    char command_id[23];
    if (command && (new_command_id(command_id) < 0 ||
                    json_object_set_new(msg, "command_id", json_string(command_id)) < 0)) {
        fprintf(s->out, "attune: cannot make a command id\n");
        json_decref(msg);
        return -1;
    }
    int i = s->n_pending;
    if (transmit(s, i, msg) < 0) {
        json_decref(msg);
        return -1;
    }
    s->pending[i].kind = kind;
    s->pending[i].cmd = command ? msg : NULL;
    if (!command)
        json_decref(msg);
    s->n_pending++;
    if (kind == REQ_TURN || kind == REQ_CHECKIN)
        s->turn_pending = 1;
    return 0;
}

/* After a drop: what is not a command is forgotten (its reply will not
 * come), the commands wait for the resend. */
static void pending_dropped(join_session *s)
{
    int kept = 0;
    for (int i = 0; i < s->n_pending; i++) {
        if (!s->pending[i].cmd)
            continue;
        s->pending[kept] = s->pending[i];
        s->pending[kept].id = 0;
        kept++;
    }
    s->n_pending = kept;
}

/* The replay after the hello has ended: the unanswered commands again,
 * in the order they were first sent, before anything new. */
static void resend_commands(join_session *s)
{
    int n = 0;
    for (int i = 0; i < s->n_pending; i++)
        if (s->pending[i].cmd && s->pending[i].id == 0 && transmit(s, i, s->pending[i].cmd) == 0)
            n++;
    if (n > 0)
        fprintf(s->out, "%s  (sent again what was not confirmed: %d)%s\n", CLI_DIM(s->color), n,
                CLI_RESET(s->color));
}

/* Removes the request answered by a reply with this id; returns its kind. */
static int take_pending(join_session *s, const char *id, req_kind *kind)
{
    if (!id || id[0] != 'c')
        return -1;
    unsigned n = (unsigned)strtoul(id + 1, NULL, 10);
    for (int i = 0; i < s->n_pending; i++) {
        if (n != 0 && s->pending[i].id == n) {
            *kind = s->pending[i].kind;
            json_decref(s->pending[i].cmd);
            memmove(&s->pending[i], &s->pending[i + 1],
                    (size_t)(s->n_pending - i - 1) * sizeof s->pending[0]);
            s->n_pending--;
            return 0;
        }
    }
    return -1;
}

static int is_partner(const join_session *s)
{
    return strcmp(s->role, "partner_a") == 0 || strcmp(s->role, "partner_b") == 0;
}

/* What identifies the step a form is for: round, step, when it began (a
 * partner's state has no room-log seqs, so the time tells a step asked again
 * from the one before), status. */
static void step_key(const json_t *state, char *out, size_t size)
{
    const json_t *step = json_object_get(state, "step");
    snprintf(out, size, "%lld/%s/%lld/%lld/%s",
             (long long)json_integer_value(json_object_get(state, "round")),
             sget(step, "id") ? sget(step, "id") : "-",
             (long long)json_integer_value(json_object_get(state, "step_started_at")),
             (long long)json_integer_value(json_object_get(state, "step_started_seq")),
             sget(state, "status") ? sget(state, "status") : "?");
}

static int status_is(const join_session *s, const char *status)
{
    const char *st = sget(s->state, "status");
    return st && strcmp(st, status) == 0;
}

static int own_consent(const join_session *s)
{
    return json_is_true(json_object_get(json_object_get(s->state, "consent"), s->role));
}

/* A partner still owes the safety check-in: the room is checking in, they
 * consented, and their own state says they have not answered. */
static int checkin_due(const join_session *s)
{
    return is_partner(s) && status_is(s, "checking_in") && own_consent(s) &&
           json_object_get(s->ack, "safety") &&
           !json_is_true(json_object_get(json_object_get(s->state, "checkin"), "answered"));
}

static int my_turn(const join_session *s)
{
    const json_t *st = s->state;
    const char *actor = sget(json_object_get(st, "step"), "actor");
    return st && sget(st, "status") && strcmp(sget(st, "status"), "active") == 0 && actor &&
           strcmp(actor, s->role) == 0;
}

static void ask(join_session *s)
{
    cli_form_ask(&s->form, json_object_get(s->ack, "vocab"), s->color, s->out);
}

static const char *yes_no(const json_t *v)
{
    return json_is_true(v) ? "yes" : "not yet";
}

static void show_status(join_session *s)
{
    const json_t *st = s->state;
    const char *status = sget(st, "status");
    const json_t *step = json_object_get(st, "step");
    int c = s->color;
    fprintf(s->out, "%s-- ", CLI_BOLD(c));
    if (!status) {
        fprintf(s->out, "?");
    } else if (strcmp(status, "ended") == 0) {
        const char *why = sget(st, "ended_reason");
        fprintf(s->out, "the session has ended (%s)", why ? why : "?");
    } else if (strcmp(status, "checking_in") == 0) {
        const json_t *ci = json_object_get(st, "checkin");
        fprintf(s->out, "safety check-in before the joint work");
        if (!is_partner(s)) {
            /* staff states carry each partner's {answered, ...}; only the
             * therapist's says whether an answer holds the session */
            fprintf(s->out, " (partner_a answered: %s, partner_b answered: %s%s)",
                    yes_no(json_object_get(json_object_get(ci, "partner_a"), "answered")),
                    yes_no(json_object_get(json_object_get(ci, "partner_b"), "answered")),
                    json_is_true(json_object_get(ci, "held")) ? "; held for you" : "");
        }
    } else {
        fprintf(s->out, "round %lld of %lld, step %lld: ",
                (long long)json_integer_value(json_object_get(st, "round")) + 1,
                (long long)json_integer_value(json_object_get(st, "rounds")),
                (long long)json_integer_value(json_object_get(step, "index")) + 1);
        cli_put_clean(s->out, sget(step, "title") ? sget(step, "title") : "?");
        const char *actor = sget(step, "actor");
        const char *as = sget(step, "as");
        fprintf(s->out, " - %s%s%s%s acts", actor ? actor : "?", as ? " (the " : "", as ? as : "",
                as ? ")" : "");
        if (strcmp(status, "waiting_consent") == 0) {
            const json_t *cs = json_object_get(st, "consent");
            fprintf(s->out, "; waiting for consent (partner_a %s, partner_b %s)",
                    yes_no(json_object_get(cs, "partner_a")),
                    yes_no(json_object_get(cs, "partner_b")));
        } else if (strcmp(status, "paused") == 0) {
            fprintf(s->out, "; paused by %s", sget(st, "paused_by") ? sget(st, "paused_by") : "?");
        }
    }
    long long observers =
        (long long)json_integer_value(json_object_get(json_object_get(st, "present"), "observers"));
    if (observers > 0)
        fprintf(s->out, "; %lld observer%s present", observers, observers == 1 ? "" : "s");
    fprintf(s->out, "%s\n", CLI_RESET(c));
}

/* /state: the status line, then what is waiting for someone: repair
 * attempts not yet accepted, open ruptures and (staff) undecided
 * suspicions, each with the command that answers it. */
static void show_details(join_session *s)
{
    FILE *o = s->out;
    int therapist = strcmp(s->role, "therapist") == 0;
    show_status(s);
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(s->state, "repair_attempts"), i, x)
    {
        if (json_is_true(json_object_get(x, "accepted")))
            continue;
        long long id = (long long)json_integer_value(json_object_get(x, "id"));
        const char *by = sget(x, "by") ? sget(x, "by") : "?";
        fprintf(o, "   repair attempt %lld by %s, not accepted", id, by);
        if (sget(x, "reply"))
            fprintf(o, " (%s)", sget(x, "reply"));
        if (therapist && !json_is_true(json_object_get(x, "acknowledged")))
            fprintf(o, ": /ack %lld", id);
        else if (is_partner(s) && strcmp(by, s->role) != 0)
            fprintf(o, ": /accept %lld or /moment %lld", id, id);
        fputc('\n', o);
    }
    json_array_foreach(json_object_get(s->state, "ruptures"), i, x)
    {
        if (!sget(x, "status") || strcmp(sget(x, "status"), "open") != 0)
            continue;
        long long id = (long long)json_integer_value(json_object_get(x, "id"));
        fprintf(o, "   rupture #%lld open: %s / ", id, sget(x, "kind") ? sget(x, "kind") : "?");
        cli_put_clean(o, sget(x, "marker") ? sget(x, "marker") : "?");
        fprintf(o, ", %s with %s", sget(x, "who") ? sget(x, "who") : "?",
                sget(x, "with") ? sget(x, "with") : "?");
        if (therapist)
            fprintf(o, ": /fix %lld STRATEGY", id);
        fputc('\n', o);
    }
    json_array_foreach(json_object_get(s->state, "suspicions"), i, x)
    {
        if (!sget(x, "status") || strcmp(sget(x, "status"), "suspected") != 0)
            continue;
        long long id = (long long)json_integer_value(json_object_get(x, "id"));
        fprintf(o, "   suspicion S%lld (private, undecided): %s / ", id,
                sget(x, "kind") ? sget(x, "kind") : "?");
        cli_put_clean(o, sget(x, "marker") ? sget(x, "marker") : "?");
        if (sget(x, "class"))
            fprintf(o, " [%s]", sget(x, "class"));
        fprintf(o, ", %s with %s", sget(x, "who") ? sget(x, "who") : "?",
                sget(x, "with") ? sget(x, "with") : "?");
        if (therapist)
            fprintf(o, ": /confirm %lld or /dismiss %lld", id, id);
        fputc('\n', o);
    }
}

static void show_consent(join_session *s)
{
    const json_t *consent = json_object_get(s->ack, "consent");
    fprintf(s->out, "\n%sConsent%s\n", CLI_BOLD(s->color), CLI_RESET(s->color));
    cli_put_clean(s->out, sget(consent, "text") ? sget(consent, "text") : "");
    fprintf(s->out, "\nWhat is recorded:\n");
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(consent, "recorded"), i, r)
    {
        fprintf(s->out, "  - ");
        cli_put_clean(s->out, json_string_value(r) ? json_string_value(r) : "");
        fputc('\n', s->out);
    }
    const char *vis = sget(json_object_get(consent, "visible_to"), s->role);
    if (vis) {
        fprintf(s->out, "Who sees it: ");
        cli_put_clean(s->out, vis);
        fputc('\n', s->out);
    }
    fprintf(s->out, "Type /consent to accept (or /quit to leave).\n\n");
}

/* The safety check-in as a step the form can ask: one choice input per
 * question, then the optional private note. Built once from the hello ack. */
static json_t *checkin_step(join_session *s)
{
    if (s->checkin_step)
        return s->checkin_step;
    const json_t *safety = json_object_get(s->ack, "safety");
    json_t *inputs = json_array();
    json_t *step = json_pack("{s:s,s:o}", "id", "checkin", "inputs", inputs);
    if (!step)
        return NULL;
    size_t i;
    const json_t *q;
    json_array_foreach(json_object_get(safety, "questions"), i, q)
    {
        const json_t *options = json_object_get(q, "options");
        json_t *d = json_pack("{s:s?,s:s,s:s?,s:b,s:O?}", "name", sget(q, "id"), "kind", "choice",
                              "label", sget(q, "prompt"), "required", 1, "options", options);
        if (!d || json_array_append_new(inputs, d) < 0) {
            json_decref(step);
            return NULL;
        }
    }
    /* the note's input name: one no question uses */
    snprintf(s->checkin_note, sizeof s->checkin_note, "note");
    for (int n = 0; n < 8; n++) {
        int taken = 0;
        json_array_foreach(json_object_get(safety, "questions"), i, q)
        {
            if (sget(q, "id") && strcmp(sget(q, "id"), s->checkin_note) == 0)
                taken = 1;
        }
        if (!taken)
            break;
        snprintf(s->checkin_note, sizeof s->checkin_note, "note_%d", n + 1);
    }
    const json_t *note = json_object_get(safety, "note");
    if (note) {
        json_t *d = json_pack("{s:s,s:s,s:s?,s:b}", "name", s->checkin_note, "kind", "text",
                              "label", sget(note, "label"), "required", 0);
        if (d && json_is_integer(json_object_get(note, "max_length")))
            json_object_set(d, "max_length", json_object_get(note, "max_length"));
        if (!d || json_array_append_new(inputs, d) < 0) {
            json_decref(step);
            return NULL;
        }
    }
    s->checkin_step = step;
    return step;
}

static void start_checkin(join_session *s)
{
    const json_t *safety = json_object_get(s->ack, "safety");
    json_t *step = checkin_step(s);
    if (!step || cli_form_start(&s->form, step) < 0) {
        fprintf(s->out, "attune: out of memory\n");
        s->quit = 1;
        s->exit_code = CLI_EXIT_FAIL;
        return;
    }
    s->form_checkin = 1;
    s->checkin_asked = 1;
    fprintf(s->out, "\n%s>> ", CLI_BOLD(s->color));
    cli_put_clean(s->out, sget(safety, "title") ? sget(safety, "title") : "Safety check-in");
    fprintf(s->out, "%s (only your therapist sees your answers)\n", CLI_RESET(s->color));
    if (sget(safety, "intro")) {
        cli_put_clean(s->out, sget(safety, "intro"));
        fputc('\n', s->out);
    }
    ask(s);
}

/* The finished check-in form as a `checkin` message. */
static json_t *checkin_message(join_session *s)
{
    json_t *answers = json_object();
    json_t *msg = json_pack("{s:s,s:o}", "type", "checkin", "answers", answers);
    if (!msg)
        return NULL;
    const char *name;
    json_t *v;
    json_object_foreach(s->form.input, name, v)
    {
        if (strcmp(name, s->checkin_note) == 0)
            json_object_set(msg, "note", v);
        else
            json_object_set(answers, name, v);
    }
    return msg;
}

static void start_turn(join_session *s, const char *key)
{
    const json_t *step = json_object_get(s->state, "step");
    snprintf(s->sent_key, sizeof s->sent_key, "%s", key);
    fprintf(s->out, "\n%s>> Your turn: ", CLI_BOLD(s->color));
    cli_put_clean(s->out, sget(step, "title") ? sget(step, "title") : "?");
    fprintf(s->out, "%s\n", CLI_RESET(s->color));
    cli_put_clean(s->out, sget(step, "prompt") ? sget(step, "prompt") : "");
    fputc('\n', s->out);
    if (cli_form_start(&s->form, json_object_get(s->state, "step")) < 0) {
        fprintf(s->out, "attune: out of memory\n");
        s->quit = 1;
        s->exit_code = CLI_EXIT_FAIL;
        return;
    }
    s->form_checkin = 0;
    if (json_array_size(json_object_get(step, "inputs")) == 0) {
        /* A step without inputs is done by saying so. */
        json_t *turn = json_pack("{s:s,s:s,s:o}", "type", "turn", "step", sget(step, "id"), "input",
                                 json_object());
        cli_form_clear(&s->form);
        send_msg(s, REQ_TURN, turn);
    } else {
        ask(s);
    }
}

/* After each state: announce changes, and open or close the questions (the
 * check-in's or the step's). */
static void on_state(join_session *s)
{
    if (s->authed && !s->resumed) {
        s->resumed = 1;
        resend_commands(s);
    }
    char key[160];
    step_key(s->state, key, sizeof key);
    if (strcmp(key, s->shown_key) != 0) {
        snprintf(s->shown_key, sizeof s->shown_key, "%s", key);
        show_status(s);
    }
    int ended = status_is(s, "ended");
    if (is_partner(s) && own_consent(s))
        s->consent_shown = 0; /* shown again if consent is withdrawn */
    if (is_partner(s) && !s->consent_shown && sget(s->state, "status") && !ended &&
        !own_consent(s)) {
        s->consent_shown = 1;
        show_consent(s);
    }
    if (cli_form_active(&s->form)) {
        int still = s->form_checkin ? checkin_due(s) : my_turn(s) && strcmp(key, s->sent_key) == 0;
        /* sent_key names the form's step while it is open */
        if (!still) {
            fprintf(s->out, "  (%s; those answers were not sent)\n",
                    s->form_checkin ? "the check-in is not open now" : "the step changed");
            if (s->form_checkin)
                s->checkin_asked = 0;
            cli_form_clear(&s->form);
        }
    }
    if (!status_is(s, "checking_in"))
        s->waiting_shown = s->held_shown = 0;
    if (!cli_form_active(&s->form) && !s->turn_pending) {
        if (checkin_due(s) && !s->checkin_asked)
            start_checkin(s);
        else if (my_turn(s) && strcmp(key, s->sent_key) != 0)
            start_turn(s, key);
    }
    if (is_partner(s) && status_is(s, "checking_in") && !s->waiting_shown &&
        json_is_true(json_object_get(json_object_get(s->state, "checkin"), "answered"))) {
        /* the same neutral words for both partners, whatever either answered */
        const char *waiting = sget(json_object_get(s->ack, "safety"), "waiting");
        s->waiting_shown = 1;
        fprintf(s->out, "  ");
        cli_put_clean(s->out, waiting ? waiting : "Thank you. Please wait a moment.");
        fputc('\n', s->out);
    }
    if (strcmp(s->role, "therapist") == 0 && status_is(s, "checking_in") && !s->held_shown &&
        json_is_true(json_object_get(json_object_get(s->state, "checkin"), "held"))) {
        s->held_shown = 1;
        fprintf(s->out,
                "%s!! The safety check-in holds the session: see the answers above. /proceed to "
                "begin the joint work, or /end to end the joint session (/private a|b TEXT to "
                "write to a partner privately).%s\n",
                CLI_RED(s->color), CLI_RESET(s->color));
    }
}

static void on_hello_ack(join_session *s, json_t *msg)
{
    s->down_since = 0;
    s->backoff_ms = RECONNECT_FIRST_MS;
    if (s->tr_ready) {
        /* A reconnect: the same room; the transcript goes on with the
         * first ack (it borrows from it). */
        s->authed = 1;
        fprintf(s->out, "%s  (connected again; going on after seq %lld)%s\n", CLI_DIM(s->color),
                (long long)s->last_seq, CLI_RESET(s->color));
        return;
    }
    json_decref(s->ack);
    s->ack = json_incref(msg);
    const char *room = sget(msg, "room");
    if (!s->room[0] && room && strlen(room) < sizeof s->room)
        snprintf(s->room, sizeof s->room, "%s", room);
    snprintf(s->role, sizeof s->role, "%s", sget(msg, "role") ? sget(msg, "role") : "?");
    s->authed = 1;
    const json_t *ex = json_object_get(msg, "exercise");
    cli_transcript_init(&s->tr, ex, json_object_get(msg, "vocab"), s->color);
    s->tr.safety = json_object_get(msg, "safety");
    s->tr.viewer = s->role;
    s->tr_ready = 1;
    fprintf(s->out, "%sJoined room %s as %s%s%s: ", CLI_BOLD(s->color),
            sget(msg, "room") ? sget(msg, "room") : "?", cli_role_color(s->color, s->role), s->role,
            CLI_RESET(s->color));
    cli_put_clean(s->out, sget(ex, "title") ? sget(ex, "title") : "?");
    fputc('\n', s->out);
    if (sget(ex, "summary")) {
        cli_put_clean(s->out, sget(ex, "summary"));
        fputc('\n', s->out);
    }
    if (strcmp(s->role, "observer") == 0)
        fprintf(s->out, "(you are observing: you see the session as the therapist does, except the "
                        "private line and the check-in answers, and cannot act)\n");
    else if (is_partner(s))
        fprintf(s->out, "(/private TEXT writes to your therapist; only your therapist sees it. "
                        "/help lists the commands)\n");
    json_int_t protocol = json_integer_value(json_object_get(msg, "protocol"));
    if (protocol != ATT_PROTOCOL_VERSION)
        fprintf(s->out, "attune: the server speaks protocol %lld, this client protocol %d\n",
                (long long)protocol, ATT_PROTOCOL_VERSION);
}

static void on_reply(join_session *s, json_t *msg, int is_error)
{
    req_kind kind = REQ_OTHER;
    const char *id = sget(msg, "id");
    int known = take_pending(s, id, &kind) == 0;
    if (known && (kind == REQ_TURN || kind == REQ_CHECKIN))
        s->turn_pending = 0;
    if (!is_error) {
        if (known && kind == REQ_HELLO)
            on_hello_ack(s, msg);
        else if (known && kind == REQ_OTHER && s->interactive)
            fprintf(s->out, "%s  ok%s\n", CLI_DIM(s->color), CLI_RESET(s->color));
        return;
    }
    const char *code = sget(msg, "code");
    fprintf(s->out, "%s  error: %s%s", CLI_RED(s->color), code ? code : "?", CLI_RESET(s->color));
    if (sget(msg, "message")) {
        fprintf(s->out, " (");
        cli_put_clean(s->out, sget(msg, "message"));
        fprintf(s->out, ")");
    }
    fputc('\n', s->out);
    if (known && kind == REQ_HELLO) {
        if (code && strcmp(code, "wrong_room") == 0)
            fprintf(s->out, "attune: the link's room= names another session than its invitation; "
                            "please use the link exactly as it was sent.\n");
        else
            fprintf(s->out, "attune: the server did not accept this invitation\n");
        s->quit = 1;
        s->exit_code = CLI_EXIT_FAIL;
    } else if (known && (kind == REQ_TURN || kind == REQ_CHECKIN)) {
        /* Nothing was recorded: ask the questions again if they are still ours. */
        if (kind == REQ_TURN)
            s->sent_key[0] = 0;
        else
            s->checkin_asked = 0;
        if (s->state)
            on_state(s);
    }
}

static void on_server_message(join_session *s, const char *data, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(data, len, 0, &jerr);
    const char *type = sget(msg, "type");
    if (!type) {
        fprintf(s->out, "attune: the server sent something that is not a protocol message\n");
        json_decref(msg);
        return;
    }
    if (strcmp(type, "ack") == 0) {
        on_reply(s, msg, 0);
    } else if (strcmp(type, "error") == 0) {
        on_reply(s, msg, 1);
    } else if (strcmp(type, "event") == 0) {
        int64_t seq = json_integer_value(json_object_get(msg, "seq"));
        if (seq <= s->last_seq && s->tr_ready) {
            json_decref(msg); /* seen before a drop: never printed twice */
            return;
        }
        s->last_seq = seq;
        if (s->tr_ready)
            cli_transcript_event(&s->tr, seq, json_object_get(msg, "event"), s->out);
    } else if (strcmp(type, "state") == 0) {
        int64_t seq = json_integer_value(json_object_get(msg, "seq"));
        if (seq > s->last_seq)
            s->last_seq = seq;
        json_decref(s->state);
        s->state = json_incref(msg);
        on_state(s);
    } else if (strcmp(type, "bye") == 0) {
        const char *reason = sget(msg, "reason");
        if (reason && strcmp(reason, "replaced") == 0)
            fprintf(s->out, "attune: this invitation was opened again on another device or in "
                            "another window, and that one has taken your place; this one is "
                            "closed. If that was not you, tell your therapist.\n");
        else if (reason && strcmp(reason, "revoked") == 0)
            fprintf(s->out, "attune: your therapist has replaced this invitation link; please ask "
                            "them for the new one.\n");
        else if (reason && strcmp(reason, "session_ended") == 0)
            fprintf(s->out, "attune: this session is over, so its link no longer opens it.\n");
        else if (reason && (strcmp(reason, "shutdown") == 0 || strcmp(reason, "room_moved") == 0)) {
            /* a restart, or the room moving to another node: the close
             * that follows is a drop, reconnected */
            fprintf(s->out, "attune: %s; joining again in a moment\n",
                    reason[0] == 's' ? "the server is restarting" : "the session is moving");
            fflush(s->out);
            json_decref(msg);
            return;
        } else if (reason && strcmp(reason, "room_erased") == 0)
            fprintf(s->out, "attune: this session has been deleted, as was asked; nothing of it "
                            "is kept, and its link no longer opens anything.\n");
        else
            fprintf(s->out, "attune: the server is closing the connection (%s)\n",
                    reason ? reason : "?");
        s->quit = 1;
        s->exit_code = CLI_EXIT_FAIL;
    }
    fflush(s->out);
    json_decref(msg);
}

/* ---- commands typed by the member ---- */

static json_t *control(const char *action)
{
    return json_pack("{s:s,s:s}", "type", "control", "action", action);
}

/* Splits "word rest" in place: returns the rest (maybe ""), word ends at *word_end. */
static char *next_word(char *s, char **word)
{
    while (*s == ' ' || *s == '\t')
        s++;
    *word = s;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    if (*s)
        *s++ = 0;
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static int parse_id(const char *w, long long *out)
{
    if (*w == '#')
        w++;
    char *end = NULL;
    long long v = strtoll(w, &end, 10);
    if (!*w || *end || v < 1 || v > 2147483647LL)
        return -1;
    *out = v;
    return 0;
}

/* A suspicion id: N, SN or #SN (the transcript prints them as SN). */
static int parse_suspicion_id(const char *w, long long *out)
{
    if (*w == '#')
        w++;
    if (*w == 'S' || *w == 's')
        w++;
    return parse_id(w, out);
}

/* "a", "b", "partner_a", "partner_b" -> the role name, else NULL. */
static const char *partner_name(const char *w)
{
    if (strcmp(w, "a") == 0 || strcmp(w, "A") == 0 || strcmp(w, "partner_a") == 0)
        return "partner_a";
    if (strcmp(w, "b") == 0 || strcmp(w, "B") == 0 || strcmp(w, "partner_b") == 0)
        return "partner_b";
    return NULL;
}

/* Splits a trailing "#ID" or "#SN" off a note's text: 1 rupture, 2 suspicion, 0 none. */
static int note_target(char *rest, long long *id)
{
    char *hash = strrchr(rest, '#');
    if (!hash || hash == rest || hash[-1] != ' ')
        return 0;
    int suspicion = hash[1] == 'S' || hash[1] == 's';
    if ((suspicion ? parse_suspicion_id(hash, id) : parse_id(hash, id)) < 0)
        return 0;
    *hash = 0;
    size_t n = strlen(rest);
    while (n > 0 && rest[n - 1] == ' ')
        rest[--n] = 0;
    return suspicion ? 2 : 1;
}

static void command(join_session *s, char *line)
{
    char *cmd;
    char *rest = next_word(line + 1, &cmd);
    int therapist = strcmp(s->role, "therapist") == 0;
    long long id = 0;
    FILE *o = s->out;
    if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "exit") == 0) {
        s->quit_deadline = srv_mono_ms() + QUIT_WAIT_MS;
    } else if (strcmp(cmd, "help") == 0) {
        cli_print_help(&join_cmd, o);
    } else if (!s->authed) {
        fprintf(o, "  (not connected yet)\n");
    } else if (strcmp(cmd, "state") == 0) {
        show_details(s);
    } else if (strcmp(cmd, "cancel") == 0) {
        if (s->form_checkin)
            s->checkin_asked = 0;
        cli_form_clear(&s->form);
        s->sent_key[0] = 0;
        if (s->state)
            on_state(s);
    } else if (strcmp(cmd, "consent") == 0) {
        send_msg(s, REQ_OTHER, json_pack("{s:s,s:b}", "type", "consent", "accept", 1));
    } else if (strcmp(cmd, "withdraw") == 0) {
        send_msg(s, REQ_OTHER, json_pack("{s:s}", "type", "consent_withdraw"));
    } else if (strcmp(cmd, "private") == 0) {
        json_t *m = json_pack("{s:s}", "type", "private_message");
        if (therapist) {
            char *w;
            char *text = next_word(rest, &w);
            const char *to = partner_name(w);
            if (!to || !*text) {
                fprintf(o, "  usage: /private a|b TEXT (a private message to partner A or B)\n");
                json_decref(m);
                return;
            }
            json_object_set_new(m, "to", json_string(to));
            rest = text;
        } else if (!*rest) {
            fprintf(o, "  usage: /private TEXT (only your therapist sees it)\n");
            json_decref(m);
            return;
        }
        json_object_set_new(m, "text", json_string(rest));
        if (send_msg(s, REQ_OTHER, m) == 0 && !therapist)
            fprintf(o, "  (sent to your therapist only; your partner does not see it)\n");
    } else if (strcmp(cmd, "ask") == 0) {
        if (send_msg(s, REQ_OTHER, json_pack("{s:s}", "type", "ask_therapist")) == 0 && !therapist)
            fprintf(o, "  (your therapist is asked for a private word; your partner does not see "
                       "it)\n");
    } else if (strcmp(cmd, "pause") == 0) {
        if (therapist)
            send_msg(s, REQ_OTHER, control("pause"));
        else if (*rest)
            send_msg(s, REQ_OTHER, json_pack("{s:s,s:s}", "type", "pause_request", "note", rest));
        else
            send_msg(s, REQ_OTHER, json_pack("{s:s}", "type", "pause_request"));
    } else if (strcmp(cmd, "resume") == 0 || strcmp(cmd, "advance") == 0 ||
               strcmp(cmd, "back") == 0 || strcmp(cmd, "swap") == 0 || strcmp(cmd, "end") == 0 ||
               strcmp(cmd, "proceed") == 0) {
        send_msg(s, REQ_OTHER, control(cmd));
    } else if (strcmp(cmd, "repair") == 0) {
        json_t *m = json_pack("{s:s}", "type", "repair_attempt");
        if (rest[0] == '#') {
            char *w;
            char *after = next_word(rest, &w);
            if (parse_id(w, &id) < 0) {
                fprintf(o, "  usage: /repair [#RUPTURE_ID] [text]\n");
                json_decref(m);
                return;
            }
            json_object_set_new(m, "rupture_id", json_integer(id));
            rest = after;
        }
        if (*rest)
            json_object_set_new(m, "text", json_string(rest));
        send_msg(s, REQ_OTHER, m);
    } else if (strcmp(cmd, "accept") == 0 || strcmp(cmd, "moment") == 0 ||
               strcmp(cmd, "ack") == 0) {
        char *w;
        next_word(rest, &w);
        if (parse_id(w, &id) < 0) {
            fprintf(o, "  usage: /%s N (N: the repair attempt's number)\n", cmd);
        } else if (strcmp(cmd, "accept") == 0 && therapist) {
            fprintf(o,
                    "  (only the other partner accepts a repair attempt; the therapist "
                    "acknowledges it with /ack %lld)\n",
                    id);
        } else if (strcmp(cmd, "accept") == 0) {
            send_msg(s, REQ_OTHER,
                     json_pack("{s:s,s:I}", "type", "repair_accept", "attempt_id", (json_int_t)id));
        } else {
            send_msg(s, REQ_OTHER,
                     json_pack("{s:s,s:I,s:s}", "type", "repair_reply", "attempt_id",
                               (json_int_t)id, "reply",
                               strcmp(cmd, "ack") == 0 ? "acknowledged" : "need_a_moment"));
        }
    } else if (strcmp(cmd, "note") == 0) {
        if (!*rest) {
            fprintf(o, "  usage: /note TEXT [#RUPTURE_ID|#SN]\n");
            return;
        }
        json_t *m = json_pack("{s:s}", "type", "note");
        int target = note_target(rest, &id);
        if (target)
            json_object_set_new(m, target == 1 ? "rupture_id" : "suspicion_id", json_integer(id));
        json_object_set_new(m, "text", json_string(rest));
        send_msg(s, REQ_OTHER, m);
    } else if (strcmp(cmd, "mark") == 0) {
        char *kind, *marker, *who, *with;
        rest = next_word(rest, &kind);
        rest = next_word(rest, &marker);
        rest = next_word(rest, &who);
        rest = next_word(rest, &with);
        if (!*with) {
            fprintf(o, "  usage: /mark withdrawal|confrontation MARKER WHO WITH [note]\n");
            return;
        }
        json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "rupture_mark", "kind", kind,
                              "marker", marker, "who", who, "with", with);
        if (*rest)
            json_object_set_new(m, "note", json_string(rest));
        send_msg(s, REQ_OTHER, m);
    } else if (strcmp(cmd, "confirm") == 0 || strcmp(cmd, "dismiss") == 0) {
        char *w;
        rest = next_word(rest, &w);
        if (parse_suspicion_id(w, &id) < 0) {
            fprintf(o, "  usage: /%s N [note] (N: the suspicion's number, printed as SN)\n", cmd);
            return;
        }
        json_t *m = json_pack("{s:s,s:I}", "type",
                              strcmp(cmd, "confirm") == 0 ? "rupture_confirm" : "rupture_dismiss",
                              "suspicion_id", (json_int_t)id);
        if (*rest)
            json_object_set_new(m, "note", json_string(rest));
        send_msg(s, REQ_OTHER, m);
    } else if (strcmp(cmd, "fix") == 0) {
        char *w, *strategy;
        rest = next_word(rest, &w);
        rest = next_word(rest, &strategy);
        if (parse_id(w, &id) < 0 || !*strategy) {
            fprintf(o, "  usage: /fix RUPTURE_ID STRATEGY [note]\n");
            return;
        }
        json_t *m = json_pack("{s:s,s:I,s:s}", "type", "rupture_repair", "rupture_id",
                              (json_int_t)id, "strategy", strategy);
        if (*rest)
            json_object_set_new(m, "note", json_string(rest));
        send_msg(s, REQ_OTHER, m);
    } else {
        fprintf(o, "  unknown command /%s (/help lists them)\n", cmd);
    }
}

/* ---- standard input ---- */

static int queue_line(join_session *s, const char *text, size_t len)
{
    if (len > 0 && text[len - 1] == '\r')
        len--;
    line_node *n = malloc(sizeof *n + len + 1);
    if (!n)
        return -1;
    n->next = NULL;
    memcpy(n->text, text, len);
    n->text[len] = 0;
    if (s->q_tail)
        s->q_tail->next = n;
    else
        s->q_head = n;
    s->q_tail = n;
    return 0;
}

/* Reads what the (non-blocking) input descriptor fd has; fd -1 means it
 * hung up. Returns 0, or -1 when a line is too long or memory runs out. */
static int read_stdin(join_session *s, int fd)
{
    if (s->in_cap - s->in_len < 4096) {
        size_t cap = s->in_cap ? s->in_cap * 2 : 8192;
        if (cap > 2 * MAX_LINE) {
            fprintf(s->out, "attune: input line too long (more than %d bytes)\n", MAX_LINE);
            return -1;
        }
        char *b = realloc(s->in, cap);
        if (!b)
            return -1;
        s->in = b;
        s->in_cap = cap;
    }
    ssize_t n = fd < 0 ? 0 : read(fd, s->in + s->in_len, s->in_cap - s->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0; /* wait again */
    if (n < 0)
        n = 0; /* a terminal gone (EIO) ends the input like a closed pipe */
    if (n == 0) {
        s->stdin_eof = 1;
        if (s->in_len > 0 && queue_line(s, s->in, s->in_len) < 0)
            return -1;
        s->in_len = 0;
        return 0;
    }
    s->in_len += (size_t)n;
    size_t start = 0;
    for (size_t i = 0; i < s->in_len; i++) {
        if (s->in[i] == '\n') {
            if (queue_line(s, s->in + start, i - start) < 0)
                return -1;
            start = i + 1;
        }
    }
    memmove(s->in, s->in + start, s->in_len - start);
    s->in_len -= start;
    return 0;
}

static void pop_line(join_session *s)
{
    line_node *n = s->q_head;
    s->q_head = n->next;
    if (!s->q_head)
        s->q_tail = NULL;
    free(n);
}

/* A partner answered one of a step's questions and is on to the next: they
 * are composing their turn, which the detector must not take for silence.
 * `typing` carries nothing of what they wrote; sent at most every 10 s. */
static void composing(join_session *s)
{
    if (!is_partner(s))
        return;
    int64_t now = srv_mono_ms();
    if (s->typing_at && now - s->typing_at < TYPING_EVERY_MS)
        return;
    s->typing_at = now;
    send_msg(s, REQ_TYPING, json_pack("{s:s}", "type", "typing"));
}

/* Feeds queued lines to commands and open questions, in order. */
static void pump_lines(join_session *s)
{
    while (s->q_head && !s->quit && !s->quit_deadline) {
        char *line = s->q_head->text;
        if (!(s->authed && s->resumed) && strcmp(line, "/quit") != 0)
            break; /* commands wait for the hello's answer and its replay */
        if (line[0] == '/') {
            command(s, line);
            pop_line(s);
            continue;
        }
        if (cli_form_active(&s->form) && !s->turn_pending) {
            if (!s->interactive) { /* a piped answer is echoed, so the output reads like a dialogue
                                    */
                cli_put_clean(s->out, line);
                fputc('\n', s->out);
            }
            int r = cli_form_answer(&s->form, json_object_get(s->ack, "vocab"), line, s->out);
            pop_line(s);
            if (r == 1 && s->form_checkin) {
                json_t *msg = checkin_message(s);
                cli_form_clear(&s->form);
                send_msg(s, REQ_CHECKIN, msg);
            } else if (r == 1) {
                json_t *turn = json_pack("{s:s,s:s,s:O}", "type", "turn", "step",
                                         sget(s->form.step, "id"), "input", s->form.input);
                cli_form_clear(&s->form);
                send_msg(s, REQ_TURN, turn);
            } else {
                if (r == 0 && !s->form_checkin)
                    composing(s);
                ask(s);
            }
            continue;
        }
        if (s->interactive) {
            fprintf(s->out, "  (nothing to answer right now; /help lists the commands)\n");
            pop_line(s);
            continue;
        }
        break; /* a piped answer waits for its question */
    }
    fflush(s->out);
}

/* wsconn's handlers: each whole server message, and standard input. */
static void on_ws_message(void *arg, const char *data, size_t len)
{
    join_session *s = arg;
    if (!s->quit)
        on_server_message(s, data, len);
}

static int on_ws_input(void *arg, int fd)
{
    join_session *s = arg;
    if (s->quit)
        return 1; /* leaving: stop watching */
    if (read_stdin(s, fd) < 0) {
        s->stdin_failed = 1;
        return 1;
    }
    return s->stdin_eof;
}

static const cli_wsconn_handlers ws_handlers = {on_ws_message, on_ws_input};

/* Opens the WebSocket and sends the hello (resuming from the last seq
 * seen); standard input joins the loop once it is on its way, so every
 * line waits behind it. 0, or -1 with why set. */
static int connect_ws(join_session *s, const cli_invite *inv, char *why, size_t why_size)
{
    /* the room for the URL: the link's, or the first ack's (on a reconnect) */
    char path[16 + ATT_ROOM_ID_BYTES];
    snprintf(path, sizeof path, "/ws%s%s", s->room[0] ? "?room=" : "", s->room);
    const cli_wsconn_config cfg = {inv->host, inv->port, path, "attune.v1", inv->tls, s->insecure};
    s->ws = cli_wsconn_open(&cfg, &ws_handlers, s, why, why_size);
    if (!s->ws)
        return -1;
    s->authed = 0;
    s->resumed = 0;
    int64_t from = s->last_seq > s->resume_from ? s->last_seq : s->resume_from;
    json_t *hello = json_pack("{s:s,s:s}", "type", "hello", "token", s->token);
    if (hello && from > 0)
        json_object_set_new(hello, "resume_from", json_integer(from));
    if (send_msg(s, REQ_HELLO, hello) < 0) {
        snprintf(why, why_size, "cannot send the hello");
        return -1;
    }
    if (!s->stdin_eof && cli_wsconn_watch_input(s->ws, STDIN_FILENO) < 0)
        s->stdin_eof = 1;
    return 0;
}

/* A close worth reconnecting after: going away (a restart), room_moved, a
 * slow reader, a server error, or none at all (a dropped connection). */
static int close_retryable(int code)
{
    return code == 1001 || code == 4503 || code == 1008 || code == 1011 || code == 1006;
}

/* The connection dropped (close_code): reconnect with backoff, 0.2 s
 * doubling to 5 s. 0 once connected again, -1 when no hello was acked for
 * RECONNECT_GIVE_UP_MS. */
static int reconnect(join_session *s, const cli_invite *inv, int close_code)
{
    if (s->authed || !s->down_since) {
        /* a drop of a joined connection (not one more 4503 while moving) */
        fprintf(s->out, "attune: the connection dropped (%d); joining again\n", close_code);
        fflush(s->out);
        s->down_since = srv_mono_ms();
        s->backoff_ms = RECONNECT_FIRST_MS;
    }
    cli_wsconn_free(s->ws);
    s->ws = NULL;
    pending_dropped(s);
    char why[320] = "no answer";
    while (srv_mono_ms() + s->backoff_ms - s->down_since <= RECONNECT_GIVE_UP_MS) {
        struct timespec ts = {(time_t)(s->backoff_ms / 1000),
                              (long)(s->backoff_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        s->backoff_ms = s->backoff_ms * 2 < RECONNECT_MAX_MS ? s->backoff_ms * 2 : RECONNECT_MAX_MS;
        if (connect_ws(s, inv, why, sizeof why) == 0)
            return 0;
        cli_wsconn_free(s->ws);
        s->ws = NULL;
    }
    fprintf(s->out, "attune: could not join the session again within %d s (%s)\n",
            RECONNECT_GIVE_UP_MS / 1000, why);
    return -1;
}

static int run(join_session *s, const cli_invite *inv)
{
    char why[320];
    s->token = inv->token;
    if (connect_ws(s, inv, why, sizeof why) < 0) {
        fprintf(stderr, "attune: %s\n", why);
        return CLI_EXIT_FAIL;
    }
    int64_t drain_until = 0;
    while (!s->quit) {
        if (cli_wsconn_broken(s->ws)) {
            fprintf(stderr, "attune: the server broke the WebSocket protocol\n");
            return CLI_EXIT_FAIL;
        }
        if (s->stdin_failed) {
            fprintf(stderr, "attune: cannot read standard input\n");
            return CLI_EXIT_FAIL;
        }
        pump_lines(s);
        if (s->quit)
            break;
        int close_code;
        const char *close_reason;
        if (cli_wsconn_closed(s->ws, &close_code, &close_reason)) {
            /* A drop (not the server's final word: 4401 with its bye, 4409
             * replaced; not our own leaving): join again, resume, resend. */
            if (close_retryable(close_code) && !s->quit_deadline) {
                if (reconnect(s, inv, close_code) == 0)
                    continue;
                int unsent = 0;
                for (int i = 0; i < s->n_pending; i++)
                    unsent += s->pending[i].cmd != NULL;
                if (unsent)
                    fprintf(s->out, "attune: %d command(s) were not confirmed by the server\n",
                            unsent);
                if (s->last_seq > 0)
                    fprintf(s->out,
                            "attune: to join again without seeing it all twice: --resume-from "
                            "%lld\n",
                            (long long)s->last_seq);
                return CLI_EXIT_FAIL;
            }
            if (close_code != 1000 || !s->quit_deadline) {
                fprintf(s->out, "attune: the connection closed (%d%s%s)\n", close_code,
                        close_reason[0] ? " " : "", close_reason);
                if (s->last_seq > 0 && close_code != 4409)
                    fprintf(s->out,
                            "attune: to join again without seeing it all twice: --resume-from "
                            "%lld\n",
                            (long long)s->last_seq);
                return s->exit_code ? s->exit_code : CLI_EXIT_FAIL;
            }
            break;
        }
        int64_t now = srv_mono_ms();
        /* Leaving (/quit, or the end of piped input): once every request has
         * its reply, wait a moment more for the events and state behind it. */
        int leaving = s->quit_deadline || (s->stdin_eof && !s->q_head);
        if (leaving && s->n_pending == 0 && s->authed) {
            if (!drain_until)
                drain_until = now + DRAIN_MS;
            else if (now >= drain_until)
                break;
        } else {
            drain_until = 0;
        }
        if (s->quit_deadline && now >= s->quit_deadline)
            break;
        int64_t deadline = drain_until;
        if (s->quit_deadline && (!deadline || s->quit_deadline < deadline))
            deadline = s->quit_deadline;
        /* one pass: server messages and input lines arrive through the
         * handlers above, then this loop decides again */
        if (cli_wsconn_service(s->ws, deadline) < 0) {
            fprintf(stderr, "attune: the connection loop failed\n");
            return CLI_EXIT_FAIL;
        }
    }
    if (cli_form_active(&s->form))
        fputc('\n', s->out); /* end the open question's line */
    s->quit = 1;             /* what arrives while closing is not shown */
    fflush(s->out);
    cli_wsconn_close(s->ws, 1000, CLOSE_WAIT_MS);
    return s->exit_code;
}

int cli_cmd_join(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&join_cmd, argc, argv, &a, stderr) < 0)
        return CLI_EXIT_USAGE;
    if (a.help) {
        cli_print_help(&join_cmd, stdout);
        return CLI_EXIT_OK;
    }
    int force_on = cli_get(&join_cmd, &a, "color") != NULL;
    int force_off = cli_get(&join_cmd, &a, "no-color") != NULL;
    if (force_on && force_off) {
        fprintf(stderr, "attune: --color and --no-color exclude each other\n");
        return CLI_EXIT_USAGE;
    }
    int64_t resume_from = 0;
    const char *rf = cli_get(&join_cmd, &a, "resume-from");
    if (rf && cli_parse_int64("resume-from", rf, 0, INT64_MAX, &resume_from, stderr) < 0)
        return CLI_EXIT_USAGE;
    char link[4096];
    const char *url = a.n_positional ? a.positional[0] : getenv("ATTUNE_LINK");
    if (!url || !*url) {
        fprintf(stderr, "attune: join needs the invitation: URL, `-` (read from standard "
                        "input) or ATTUNE_LINK (see attune join --help)\n");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(url, "-") == 0) {
        if (read_link_line(link, sizeof link) < 0) {
            fprintf(stderr, "attune: expected the invitation URL on the first line of standard "
                            "input\n");
            return CLI_EXIT_USAGE;
        }
        url = link;
    }
    cli_invite inv;
    char why[160];
    if (cli_invite_parse(url, &inv, why, sizeof why) < 0) {
        fprintf(stderr, "attune: %s\n", why);
        return CLI_EXIT_USAGE;
    }
    join_session *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "attune: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    s->insecure = cli_get(&join_cmd, &a, "insecure") != NULL;
    s->out = stdout;
    s->color = cli_use_color(force_on ? 1 : force_off ? 0 : -1);
    s->interactive = isatty(STDIN_FILENO);
    s->resume_from = resume_from;
    snprintf(s->room, sizeof s->room, "%s", inv.room);
    int rc = run(s, &inv);
    cli_wsconn_free(s->ws);
    cli_form_clear(&s->form);
    json_decref(s->checkin_step);
    if (s->tr_ready)
        cli_transcript_free(&s->tr);
    json_decref(s->ack);
    json_decref(s->state);
    for (int i = 0; i < s->n_pending; i++)
        json_decref(s->pending[i].cmd);
    while (s->q_head)
        pop_line(s);
    free(s->in);
    free(s);
    return rc;
}
