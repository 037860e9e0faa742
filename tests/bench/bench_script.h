/* bench_script.h - what the load generator needs to know about an exercise
 * to take valid turns: for each step its id and a prebuilt `input` object
 * that satisfies the step's input descriptions without tripping the rupture
 * detector (neutral text, a mid rating, the non-branching choice, the first
 * vocabulary entry).
 *
 * Built once per exercise id from the hello ack's `exercise` and `vocab`
 * members (jansson) and cached in a bench_scripts table the caller owns; the
 * table owns every script and string in it. Single-threaded (the
 * generator's loop). */
#ifndef ATTUNE_BENCH_SCRIPT_H
#define ATTUNE_BENCH_SCRIPT_H

#include <stddef.h>

#define BENCH_MAX_SCRIPTS 16

typedef struct {
    char *id;    /* step id */
    char *input; /* JSON object text for turn.input */
} bench_step;

typedef struct {
    char *id; /* exercise id */
    int rounds;
    int n_steps;
    bench_step *steps;
} bench_script;

typedef struct {
    bench_script scripts[BENCH_MAX_SCRIPTS];
    int n;
} bench_scripts;

/* The cached script for exercise_id, or NULL. */
const bench_script *bench_script_find(const bench_scripts *t, const char *exercise_id);

/* Builds and caches the script from a hello ack's `exercise` and `vocab`
 * JSON texts (unless already cached) and returns it in *out. Returns 0, or
 * -1 with a reason in err when the texts do not describe a usable script. */
int bench_script_add(bench_scripts *t, const char *exercise_json, size_t exercise_len,
                     const char *vocab_json, size_t vocab_len, const bench_script **out, char *err,
                     size_t err_size);

/* Frees every cached script. */
void bench_scripts_free(bench_scripts *t);

#endif
