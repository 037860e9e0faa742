/* state_writer.c - the room's state as JSON text, written directly into a
 * buffer. The server sends a state to every member after every change, and
 * building a jansson tree and dumping it with sorted keys was most of its
 * CPU. This writer emits the same bytes as
 * json_dumps(att_room_state_json(room, viewer, with_type), JSON_COMPACT |
 * JSON_SORT_KEYS): keys are written in sorted order by hand, strings are
 * escaped as jansson escapes them, and the step's constant parts were
 * encoded by jansson when the catalog was loaded. test_state_writer checks
 * the two byte for byte over thousands of random sessions. */
#include "room_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void att_buf_free(att_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int buf_reserve(att_buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

typedef struct {
    att_buf *b;
    int failed;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (w->failed || buf_reserve(w->b, n)) {
        w->failed = 1;
        return;
    }
    memcpy(w->b->data + w->b->len, s, n);
    w->b->len += n;
    w->b->data[w->b->len] = '\0';
}

static void raw(writer *w, const char *s)
{
    put(w, s, strlen(s));
}

static void integer(writer *w, long long v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(w, p, (size_t)(tmp + sizeof tmp - p));
}

/* A JSON string, escaped as jansson escapes it (no slash or non-ASCII escapes). */
static void string(writer *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    put(w, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(w, run, (size_t)(s - run));
        run = s + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        put(w, esc, n);
    }
    put(w, run, (size_t)(s - run));
    put(w, "\"", 1);
}

static void string_or_null(writer *w, const char *s)
{
    if (s)
        string(w, s);
    else
        raw(w, "null");
}

static void boolean(writer *w, int v)
{
    raw(w, v ? "true" : "false");
}

static void rating(writer *w, int r)
{
    if (r >= 0)
        integer(w, r);
    else
        raw(w, "null");
}

static void rupture(writer *w, const att_room *room, const att_rupture *r)
{
    const att_rupture_open *o = &r->open;
    raw(w, "{\"confirmed\":");
    boolean(w, r->confirmed);
    raw(w, ",\"evidence\":[");
    for (int i = 0; i < o->n_evidence; i++) {
        if (i)
            raw(w, ",");
        integer(w, o->evidence[i]);
    }
    raw(w, "],\"id\":");
    integer(w, o->id);
    raw(w, ",\"kind\":");
    string(w, att_rupture_kind_name(o->kind));
    raw(w, ",\"marker\":");
    string(w, o->marker);
    raw(w, ",\"opened_at\":");
    integer(w, r->opened_at);
    raw(w, ",\"opened_seq\":");
    integer(w, r->opened_seq);
    raw(w, ",\"repair\":");
    if (r->status == ATT_RS_REPAIRED) {
        raw(w, "{\"at\":");
        integer(w, r->repair_at);
        raw(w, ",\"attempt_seq\":");
        if (r->repair_attempt_seq)
            integer(w, r->repair_attempt_seq);
        else
            raw(w, "null");
        raw(w, ",\"by\":");
        string(w, att_role_name(r->repair_by));
        raw(w, ",\"how\":");
        string(w, att_repair_how_name(r->repair_how));
        raw(w, ",\"seq\":");
        integer(w, r->repair_seq);
        raw(w, ",\"strategy\":");
        string_or_null(w, r->repair_strategy[0] ? r->repair_strategy : NULL);
        raw(w, ",\"time_to_repair_ms\":");
        integer(w, r->repair_at - r->opened_at);
        raw(w, "}");
    } else {
        raw(w, "null");
    }
    raw(w, ",\"round\":");
    integer(w, o->round);
    raw(w, ",\"source\":");
    string(w, att_source_name(o->source));
    raw(w, ",\"status\":");
    string(w, att_rupture_status_name(r->status));
    raw(w, ",\"step\":");
    if (o->step >= 0 && (size_t)o->step < room->script->n_steps)
        raw(w, room->script->steps[o->step].id_json);
    else
        raw(w, "null");
    raw(w, ",\"who\":");
    string(w, att_role_name(o->who));
    raw(w, ",\"with\":");
    string(w, att_role_name(o->with));
    raw(w, "}");
}

static void step(writer *w, const att_room *room)
{
    if (room->status == ATT_STATUS_ENDED) {
        raw(w, "null");
        return;
    }
    const att_step *st = &room->script->steps[room->step];
    raw(w, "{\"actor\":");
    string(w, att_role_name(att_room_resolve_actor(room, st->actor)));
    raw(w, ",\"as\":");
    string_or_null(w, att_actor_role_name(st->actor));
    raw(w, ",\"id\":");
    raw(w, st->id_json);
    raw(w, ",\"index\":");
    integer(w, room->step);
    raw(w, ",\"inputs\":");
    raw(w, st->inputs_json);
    raw(w, ",\"prompt\":");
    raw(w, st->prompt_json);
    raw(w, ",\"tag\":");
    string_or_null(w, att_step_tag_name(st->tag));
    raw(w, ",\"title\":");
    raw(w, st->title_json);
    raw(w, "}");
}

int att_room_state_write(const att_room *room, att_role viewer, int with_type, att_buf *buf)
{
    writer w = {.b = buf, .failed = 0};
    raw(&w, "{\"consent\":{\"partner_a\":");
    boolean(&w, room->consent[0]);
    raw(&w, ",\"partner_b\":");
    boolean(&w, room->consent[1]);
    raw(&w, "},\"ended_reason\":");
    string_or_null(&w, att_room_end_reason_name(room->end_reason));
    raw(&w, ",\"exercise\":");
    string(&w, room->script->id);
    raw(&w, ",\"last_rating\":{\"partner_a\":");
    rating(&w, room->last_rating[0]);
    raw(&w, ",\"partner_b\":");
    rating(&w, room->last_rating[1]);
    raw(&w, "},\"listener\":");
    string(&w, att_role_name(att_other_partner(room->speaker)));
    raw(&w, ",\"next_rupture_id\":");
    integer(&w, room->next_rupture_id);
    raw(&w, ",\"paused_by\":");
    string_or_null(&w, room->paused_by == ATT_ROLE_NONE ? NULL : att_role_name(room->paused_by));
    raw(&w, ",\"present\":{\"observers\":");
    integer(&w, room->observers);
    raw(&w, ",\"partner_a\":");
    boolean(&w, room->present[0]);
    raw(&w, ",\"partner_b\":");
    boolean(&w, room->present[1]);
    raw(&w, ",\"therapist\":");
    boolean(&w, room->present[2]);
    raw(&w, "},\"rejections_in_row\":");
    integer(&w, room->rejections_in_row);
    raw(&w, ",\"repair_attempts\":[");
    for (int i = 0; i < room->n_attempts; i++) {
        const att_attempt *a = &room->attempts[i];
        raw(&w, i ? ",{\"accepted\":" : "{\"accepted\":");
        boolean(&w, a->accepted);
        raw(&w, ",\"by\":");
        string(&w, att_role_name(a->by));
        raw(&w, ",\"rupture_id\":");
        if (a->rupture_id)
            integer(&w, a->rupture_id);
        else
            raw(&w, "null");
        raw(&w, ",\"seq\":");
        integer(&w, a->seq);
        raw(&w, "}");
    }
    raw(&w, "],\"room\":");
    string(&w, room->room_id);
    raw(&w, ",\"round\":");
    integer(&w, room->round);
    raw(&w, ",\"rounds\":");
    integer(&w, room->script->rounds);
    raw(&w, ",\"ruptures\":[");
    int first = 1;
    for (int i = 0; i < room->n_ruptures; i++) {
        if (!att_rupture_visible_to(&room->ruptures[i], viewer))
            continue;
        if (!first)
            raw(&w, ",");
        first = 0;
        rupture(&w, room, &room->ruptures[i]);
    }
    raw(&w, "],\"ruptures_dropped\":");
    integer(&w, room->ruptures_dropped);
    raw(&w, ",\"seq\":");
    integer(&w, room->seq);
    raw(&w, ",\"speaker\":");
    string(&w, att_role_name(room->speaker));
    raw(&w, ",\"status\":");
    string(&w, att_room_status_name(room->status));
    raw(&w, ",\"step\":");
    step(&w, room);
    raw(&w, ",\"step_started_at\":");
    integer(&w, room->step_started_at);
    raw(&w, ",\"step_started_seq\":");
    integer(&w, room->step_started_seq);
    if (with_type) {
        raw(&w, ",\"type\":\"state\",\"you\":");
        string(&w, att_role_name(viewer));
    }
    raw(&w, "}");
    return w.failed ? -1 : 0;
}
