/* blame.h - the blame classifier: tells criticism and contempt aimed at the
 * partner from everything else a partner says (hurt, needs, reflections,
 * apologies, affection, self-talk). Its rules and lexicons are data, one file
 * per language (protocol/vocab/blame/<lang>.json; the format is described in
 * protocol/vocab/blame/README.md).
 *
 * Owns: one language's compiled rules (att_blame_lang). att_blame_lang_compile
 * builds them from a parsed JSON object (copying what it keeps, so the caller
 * may free the JSON) and is the module's only allocation; att_blame_lang_free
 * releases them. The catalog (catalog.h) reads the files and picks the
 * language; this module does no I/O.
 *
 * Classifying is pure: no allocation, no I/O, no global state, a fixed amount
 * of stack. A compiled language is read-only, so threads may share it. Any
 * bytes are accepted (invalid UTF-8 included) and text of any length; only
 * the len bytes given are read.
 *
 * Text is folded before matching: ASCII and Latin-1 / Latin Extended-A
 * letters are lowercased and lose their accents (É -> e, ñ -> n, ß -> ss,
 * œ -> oe), typographic apostrophes become ', runs of three or more of the
 * same ASCII letter collapse to one ("sooo" -> "so"). Words are runs of
 * letters and digits (an apostrophe between two letters is part of the word);
 * an emoji is a word by itself. Sentences end at . ! ? ; newline, an ellipsis
 * and ¡ ¿. Data entries are folded the same way, so they may be written with
 * accents. */
#ifndef ATTUNE_BLAME_H
#define ATTUNE_BLAME_H

#include <jansson.h>
#include <stddef.h>
#include "attune/types.h"

typedef enum {
    ATT_BLAME_NONE = 0,
    ATT_BLAME_CRITICISM = 1,
    ATT_BLAME_CONTEMPT = 2
} att_blame_class;

typedef struct att_blame_lang att_blame_lang;

/* Validates and compiles one language file's root object. file names the
 * file in error messages (e.g. "vocab/blame/en.json"); every message starts
 * with it. Returns 0 or a negative code (ATT_ERR_BAD_MESSAGE for a format
 * error, ATT_ERR_INTERNAL when out of memory) with err set. */
int att_blame_lang_compile(json_t *root, const char *file, att_blame_lang **out, att_error *err);
void att_blame_lang_free(att_blame_lang *lang);

/* The file's "lang" member, e.g. "en". */
const char *att_blame_lang_tag(const att_blame_lang *lang);
size_t att_blame_lang_rule_count(const att_blame_lang *lang);
/* The rule's "pattern" text, or NULL when i is out of range. */
const char *att_blame_lang_rule_pattern(const att_blame_lang *lang, size_t i);

/* Classifies len bytes of text. When rule_out is not NULL it receives the
 * index of the rule that decided (or -1 for ATT_BLAME_NONE). A NULL lang or
 * text gives ATT_BLAME_NONE. */
att_blame_class att_blame_classify(const att_blame_lang *lang, const char *text, size_t len,
                                   int *rule_out);

#endif
