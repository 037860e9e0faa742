/* catalog.h - the protocol's data (exercise scripts, vocabularies, rupture
 * markers, resolution strategies, the blame rules) parsed from JSON into
 * read-only C structures.
 *
 * Ownership: att_catalog_load* allocate; the caller owns the catalog and frees
 * it with att_catalog_free. Everything else borrows from the catalog, which
 * must outlive every room that uses it. After loading, the catalog is never
 * modified, so one catalog can be shared by many rooms (and threads). */
#ifndef ATTUNE_CATALOG_H
#define ATTUNE_CATALOG_H

#include <jansson.h>
#include "attune/blame.h"
#include "attune/types.h"

typedef enum {
    ATT_INPUT_TEXT,
    ATT_INPUT_EMOTION_REACTIVE,
    ATT_INPUT_EMOTION_PRIMARY,
    ATT_INPUT_NEED,
    ATT_INPUT_RATING,
    ATT_INPUT_CHOICE,
} att_input_kind;

typedef enum {
    ATT_ACTOR_SPEAKER,
    ATT_ACTOR_LISTENER,
    ATT_ACTOR_PARTNER_A,
    ATT_ACTOR_PARTNER_B,
    ATT_ACTOR_THERAPIST,
} att_actor;

typedef enum {
    ATT_TAG_NONE,
    ATT_TAG_REFLECTION,
    ATT_TAG_REFLECTION_CHECK,
    ATT_TAG_CONNECTION_RATING,
} att_step_tag;

typedef struct att_vocab att_vocab;

typedef struct {
    const char *id;
    const char *label;
} att_option;

typedef struct {
    const char *name;
    att_input_kind kind;
    int required;
    const att_vocab *vocab;    /* the three vocabulary kinds */
    const att_option *options; /* choice */
    size_t n_options;
    int min, max;      /* rating */
    size_t max_length; /* text, and free text beside a vocabulary choice */
} att_input_desc;

typedef struct {
    const char *id;
    const char *title;
    const char *prompt;
    att_actor actor;
    att_step_tag tag;
    const att_input_desc *inputs;
    size_t n_inputs;
    /* branch: when input[branch_input] equals branch_equals, go to step
     * branch_goto (an index in the same script) instead of the next one. */
    const char *branch_input; /* NULL when the step has no branch */
    const char *branch_equals;
    int branch_goto;
    json_t *json; /* the step as described on the wire (borrowed from script) */
    /* The step's constant parts as compact, sorted JSON text (owned by the
     * catalog), so the state writer copies them instead of re-encoding. */
    char *id_json, *title_json, *prompt_json, *inputs_json;
    /* How long the actor may be quiet before the detector suggests a
     * silence: -1 = the room's default, 0 = never (reflective steps). */
    long long silence_ms;
} att_step;

typedef struct {
    const char *id;
    const char *title;
    int rounds;
    int swap_each_round;
    const att_step *steps;
    size_t n_steps;
    const char *language; /* "en" unless the script says otherwise */
    json_t *json;         /* the whole script object, sent in the hello ack */
} att_script;

typedef struct {
    const char *id;
    const char *label;
    const char *sentence;
    const char *kind; /* markers only: withdrawal / confrontation / ...; else NULL */
} att_vocab_entry;

struct att_vocab {
    const char *id; /* reactive, primary, needs, markers, strategies */
    const att_vocab_entry *entries;
    size_t n_entries;
    json_t *json;
};

typedef struct att_catalog att_catalog;

/* Loads every file of the protocol directory (exercises/ *.json and vocab/ *.json).
 * This is the catalog's only I/O. Returns 0 or a negative code with err set. */
int att_catalog_load_dir(const char *protocol_dir, att_catalog **out, att_error *err);
void att_catalog_free(att_catalog *cat);

const att_script *att_catalog_script(const att_catalog *cat, const char *id);
size_t att_catalog_script_count(const att_catalog *cat);
const att_script *att_catalog_script_at(const att_catalog *cat, size_t i);
/* id: reactive, primary, needs, markers, strategies */
const att_vocab *att_catalog_vocab(const att_catalog *cat, const char *id);
/* Returns the entry or NULL. */
const att_vocab_entry *att_vocab_find(const att_vocab *v, const char *id);
/* JSON for the hello ack: {"reactive":[...], "primary":[...], ...}; borrowed. */
json_t *att_catalog_vocab_json(const att_catalog *cat);
/* The consent notice ({"version","text","recorded","visible_to","receives",
 * "hash"}); borrowed. The hash is SHA-256 (hex) of the notice's canonical
 * JSON without "hash"; a consent records it with the version. */
json_t *att_catalog_consent_json(const att_catalog *cat);
const char *att_catalog_consent_hash(const att_catalog *cat);
int att_catalog_consent_version(const att_catalog *cat);

/* The safety check-in (protocol/safety.json); borrowed. */
json_t *att_catalog_safety_json(const att_catalog *cat);
/* Checks a partner's check-in answers ({question id: option id}, every
 * question once) and note; *hold is 1 when an answer is one the question
 * holds the session on. Returns 0 or invalid_input. No allocation. */
int att_catalog_safety_check(const att_catalog *cat, json_t *answers, const char *note, int *hold,
                             att_error *err);

/* Blame classifier (blame.h), rules per language from vocab/blame/<lang>.json.
 * lang is a language tag such as "en", "es", "fr", "de" (a region suffix
 * like "en-GB" falls back to "en"); an unknown language, or a NULL lang or
 * text, gives ATT_BLAME_NONE. No allocation, no I/O. */
att_blame_class att_catalog_blame_classify(const att_catalog *cat, const char *lang,
                                           const char *text);
/* 1 when rules exist for lang, else 0. */
int att_catalog_blame_has_language(const att_catalog *cat, const char *lang);
/* The compiled rules for lang (borrowed), or NULL. */
const att_blame_lang *att_catalog_blame_lang(const att_catalog *cat, const char *lang);

#endif
