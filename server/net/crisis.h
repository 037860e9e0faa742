/* crisis.h - the practice's own crisis resources (--crisis-file): reads and
 * checks the JSON file at start-up and builds the body of GET /api/crisis
 * (protocol/HTTP.md), which client/web/crisis.html shows before its built-in
 * international directory. The same body carries the neutral address the
 * "Leave quickly" control goes to.
 *
 * The file (deploy/crisis.example.json), every member optional:
 *   country, emergency, checked (YYYY-MM-DD), note: strings;
 *   lines, domestic_abuse: arrays (at most SRV_CRISIS_MAX_LINES) of
 *     {name (required), phone, text, text_keyword, url, hours, description},
 *     each with at least one of phone, text, url;
 *   neutral_url: absolute http(s) address (default SRV_CRISIS_DEFAULT_NEUTRAL_URL).
 * Unknown members are refused, so a misspelt one is not silently dropped.
 *
 * Pure: no state, no threads. The caller owns every json_t returned. */
#ifndef SRV_CRISIS_H
#define SRV_CRISIS_H

#include <jansson.h>
#include "attune/types.h"

#define SRV_CRISIS_MAX_FILE (64 * 1024)
#define SRV_CRISIS_MAX_LINES 20
#define SRV_CRISIS_DEFAULT_NEUTRAL_URL "https://www.wikipedia.org/"

/* Reads PATH and checks it (srv_crisis_check). Errors start with the member
 * at fault and end with the file: "lines[1].phone: ... (in PATH)". */
int srv_crisis_load(const char *path, json_t **out, att_error *err);

/* Checks an already parsed file and makes the served body: {"configured":
 * true, the members given, "lines": [...], "domestic_abuse": [...],
 * "neutral_url"}. Errors name the member ("domestic_abuse[0].url: ..."). */
int srv_crisis_check(const json_t *in, json_t **out, att_error *err);

/* The body without --crisis-file: {"configured": false, "lines": [],
 * "domestic_abuse": [], "neutral_url": the default}. NULL if out of memory. */
json_t *srv_crisis_default(void);

#endif
