/* transcript.h - a session's events as a readable transcript, one entry per
 * event: seq, time since the room was created, who, and what (turns with
 * their step title and inputs labelled from the script and the
 * vocabularies; the detector's suspicions apart from ruptures, with how the
 * therapist decided them; ruptures with kind, marker and time to repair;
 * pauses as pauses; repair attempts by their attempt id; private messages,
 * requests for a private word and safety check-in answers marked private;
 * therapist notes marked private). Reads protocol 2 events and the legacy
 * (protocol 1) ones alike. Used by `attune replay` (events from the store)
 * and `attune join` (events from the server).
 *
 * Everything a participant wrote is printed with control characters
 * replaced, so nobody can send escape sequences to another's terminal.
 *
 * Ownership: the transcript borrows the script, vocabulary and safety JSON
 * (which must outlive it) and owns its tables of ruptures and suspicions
 * seen so far (freed by cli_transcript_free). */
#ifndef CLI_TRANSCRIPT_H
#define CLI_TRANSCRIPT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    int id;
    char kind[32];
    char marker[64];
    int64_t opened_at;
} cli_rupture_seen;

/* What the transcript has shown, for a closing summary. */
typedef struct {
    int suspicions, confirmed, dismissed; /* the detector's suggestions */
    int ruptures, repaired;               /* ruptures opened (marks, confirmed suspicions) */
    int pauses, attempts, private_messages, requests, checkins;
} cli_tally;

typedef struct {
    const json_t *script; /* the exercise object (steps with their inputs) */
    const json_t *vocab;  /* {"reactive":[...],"primary":[...],...} */
    const json_t *safety; /* the safety check-in ({questions, note}), or NULL: ids shown */
    const char *viewer;   /* `attune join`: the member's role, for command hints; NULL: none */
    int color;            /* emit ANSI colours */
    int legacy;           /* 1: a protocol 1 log (suspicions in the ruptures' id space) */
    int64_t t0;           /* `at` of the first event shown; -1 until then */
    cli_rupture_seen *ruptures;
    size_t n_ruptures, cap_ruptures;
    cli_rupture_seen *suspicions;
    size_t n_suspicions, cap_suspicions;
    cli_tally tally;
} cli_transcript;

void cli_transcript_init(cli_transcript *t, const json_t *script, const json_t *vocab, int color);
void cli_transcript_free(cli_transcript *t);

/* Appends the entry for one event (lines ending in \n) to out. Returns 0
 * or -1 when the output failed. Unknown event types are shown by name. */
int cli_transcript_event(cli_transcript *t, int64_t seq, const json_t *event, FILE *out);

/* One line summing up what was shown: suspicions raised, confirmed,
 * dismissed and undecided; ruptures and repairs; pauses; private messages
 * and check-ins (only those the transcript showed). Returns 0 or -1. */
int cli_transcript_summary(const cli_transcript *t, FILE *out);

/* Helpers shared with the terminal participant. */
/* Writes s with control characters (and invalid bytes' neighbours left as
 * they are) replaced by spaces. */
void cli_put_clean(FILE *out, const char *s);
/* The entry with this id in a vocabulary array, or NULL. */
const json_t *cli_vocab_entry(const json_t *vocab, const char *kind, const char *id);
/* The step object with this id in the script, or NULL. */
const json_t *cli_script_step(const json_t *script, const char *step_id);
/* ANSI colour for a role name ("" when colour is off). */
const char *cli_role_color(int color, const char *role);
#define CLI_RESET(color) ((color) ? "\033[0m" : "")
#define CLI_DIM(color) ((color) ? "\033[2m" : "")
#define CLI_BOLD(color) ((color) ? "\033[1m" : "")
#define CLI_RED(color) ((color) ? "\033[1;31m" : "")
#define CLI_GREEN(color) ((color) ? "\033[32m" : "")

#endif
