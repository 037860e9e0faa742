/* test_crisis.c - the --crisis-file loader: the example file in deploy/
 * loads, the served body keeps the practice's lines in order and defaults the
 * neutral address, and every kind of mistake is refused with a message that
 * names the member at fault. */
#include "check.h"
#include "crisis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef ATTUNE_SOURCE_DIR
#define ATTUNE_SOURCE_DIR "."
#endif

static char dir[] = "/tmp/attune-crisis-XXXXXX";

/* Writes text to a file in dir, loads it; returns rc, *msg the error. */
static int load_text(const char *text, json_t **out, char *msg, size_t size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/crisis.json", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    att_error err = {0};
    int rc = srv_crisis_load(path, out, &err);
    snprintf(msg, size, "%s", err.message);
    return rc;
}

/* The file must be refused and the message must contain `needle`. */
static void refused(const char *text, const char *needle)
{
    json_t *out = NULL;
    char msg[200];
    int rc = load_text(text, &out, msg, sizeof msg);
    CHECK_MSG(rc < 0, "accepted: %s", text);
    CHECK(out == NULL);
    CHECK_MSG(strstr(msg, needle) != NULL, "message '%s' lacks '%s'", msg, needle);
    json_decref(out);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    att_error err = {0};
    json_t *out = NULL;

    /* The example in deploy/ loads. */
    CHECK_INT(srv_crisis_load(ATTUNE_SOURCE_DIR "/deploy/crisis.example.json", &out, &err), 0);
    CHECK(json_is_true(json_object_get(out, "configured")));
    CHECK(json_array_size(json_object_get(out, "lines")) > 0);
    CHECK(json_array_size(json_object_get(out, "domestic_abuse")) > 0);
    CHECK(json_is_string(json_object_get(out, "neutral_url")));
    json_decref(out);

    /* Lines keep their order and members; the neutral address defaults. */
    char msg[200];
    CHECK_INT(load_text("{\"country\":\"Canada\",\"emergency\":\"911\",\"lines\":["
                        "{\"name\":\"First\",\"phone\":\"1-800-000-0001\",\"hours\":\"24/7\"},"
                        "{\"name\":\"Second\",\"text\":\"686868\",\"text_keyword\":\"CONNECT\"}]}",
                        &out, msg, sizeof msg),
              0);
    json_t *lines = json_object_get(out, "lines");
    CHECK_INT(json_array_size(lines), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(lines, 0), "name")), "First");
    CHECK_STR(json_string_value(json_object_get(json_array_get(lines, 1), "text_keyword")),
              "CONNECT");
    CHECK_INT(json_array_size(json_object_get(out, "domestic_abuse")), 0);
    CHECK_STR(json_string_value(json_object_get(out, "neutral_url")),
              SRV_CRISIS_DEFAULT_NEUTRAL_URL);
    CHECK_STR(json_string_value(json_object_get(out, "country")), "Canada");
    json_decref(out);

    /* A checked date; only the neutral address: fine. */
    CHECK_INT(load_text("{\"checked\":\"2025-02-28\"}", &out, msg, sizeof msg), 0);
    json_decref(out);
    CHECK_INT(
        load_text("{\"neutral_url\":\"http://127.0.0.1:9/weather.html\"}", &out, msg, sizeof msg),
        0);
    CHECK_STR(json_string_value(json_object_get(out, "neutral_url")),
              "http://127.0.0.1:9/weather.html");
    json_decref(out);

    /* The default body. */
    out = srv_crisis_default();
    CHECK(json_is_false(json_object_get(out, "configured")));
    CHECK_INT(json_array_size(json_object_get(out, "lines")), 0);
    CHECK_STR(json_string_value(json_object_get(out, "neutral_url")),
              SRV_CRISIS_DEFAULT_NEUTRAL_URL);
    json_decref(out);

    /* Mistakes, each named. */
    refused("{\"lines\": [", "crisis.json:1:");
    refused("[1, 2]", "expected a JSON object at the top");
    refused("{\"countri\":\"Canada\"}", "unknown member 'countri'");
    refused("{\"country\":\"Canada\",\"country\":\"Chile\"}", "crisis.json:1:");
    refused("{\"country\":7}", "country: expected a string");
    refused("{\"country\":\"  \"}", "country: expected text");
    refused("{\"note\":\"a\\u0007bell\"}", "note: expected text");
    refused("{\"emergency\":\"9;1;1\"}", "emergency: expected a number");
    refused("{\"checked\":\"2025-13-01\"}", "checked: expected a date");
    refused("{\"neutral_url\":\"javascript:alert(1)\"}", "neutral_url: expected an absolute");
    refused("{\"neutral_url\":\"https://\"}", "neutral_url: expected an absolute");
    refused("{\"neutral_url\":\"https://a.example/\\\"x\"}", "neutral_url: expected");
    refused("{\"lines\":{}}", "lines: expected an array");
    refused("{\"lines\":[\"988\"]}", "lines[0]: expected an object");
    refused("{\"lines\":[{\"name\":\"A\",\"phone\":\"1\"},{\"phone\":\"988\"}]}",
            "lines[1].name: missing");
    refused("{\"lines\":[{\"name\":\"A\",\"phon\":\"988\"}]}", "lines[0]: unknown member 'phon'");
    refused("{\"lines\":[{\"name\":\"A\",\"hours\":\"24/7\"}]}",
            "lines[0]: needs at least one of phone, text, url");
    refused("{\"domestic_abuse\":[{\"name\":\"A\",\"url\":\"ftp://x\"}]}",
            "domestic_abuse[0].url: expected an absolute");
    refused("{\"domestic_abuse\":[{\"name\":\"A\",\"phone\":\"1\",\"text_keyword\":\"HI\"}]}",
            "domestic_abuse[0].text_keyword: given without text");
    {
        char big[4096];
        snprintf(big, sizeof big, "{\"country\":\"%0200d\"}", 0);
        refused(big, "country: longer than 80 bytes");
        char many[8192] = "{\"lines\":[";
        for (int i = 0; i <= SRV_CRISIS_MAX_LINES; i++)
            strcat(many,
                   i ? ",{\"name\":\"x\",\"phone\":\"1\"}" : "{\"name\":\"x\",\"phone\":\"1\"}");
        strcat(many, "]}");
        refused(many, "lines: more than 20 lines");
    }

    /* Missing file: the message names the file. */
    CHECK(srv_crisis_load("/nonexistent/crisis.json", &out, &err) < 0);
    CHECK(strstr(err.message, "--crisis-file /nonexistent/crisis.json") != NULL);
    CHECK(out == NULL);

    char path[128];
    snprintf(path, sizeof path, "%s/crisis.json", dir);
    unlink(path);
    rmdir(dir);
    return check_done("crisis");
}
