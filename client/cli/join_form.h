/* join_form.h - one step's inputs asked one line at a time, from the
 * step's input descriptions alone (the protocol's section 8.2): text,
 * rating (min..max), choice (numbered options), and the three vocabulary
 * kinds (numbered entries of the hello ack's vocabulary, free text
 * allowed). Collects the turn's `input` object.
 *
 * Ownership: the form holds a reference to the step object and owns the
 * input object it builds (cli_form_clear releases both). */
#ifndef CLI_JOIN_FORM_H
#define CLI_JOIN_FORM_H

#include <jansson.h>
#include <stdio.h>

typedef struct {
    json_t *step;  /* the state's step object (reference held), NULL when idle */
    size_t next;   /* index of the input being asked */
    json_t *input; /* the answers so far (owned) */
} cli_form;

/* Starts asking the step's inputs (takes a new reference to step). */
int cli_form_start(cli_form *f, json_t *step);
void cli_form_clear(cli_form *f);
int cli_form_active(const cli_form *f);

/* Prints the question for the current input (label, kind, and numbered
 * options or vocabulary entries). */
void cli_form_ask(const cli_form *f, const json_t *vocab, int color, FILE *out);

/* Takes one answer line. Returns 1 when the form is complete (the input
 * object is ready), 0 when it moved to the next input, or -1 when the
 * answer was not acceptable (the reason is printed; ask again). */
int cli_form_answer(cli_form *f, const json_t *vocab, const char *line, FILE *out);

#endif
