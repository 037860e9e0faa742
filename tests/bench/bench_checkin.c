/* bench_checkin.c - see bench_checkin.h. */
#include "bench_checkin.h"

#include <string.h>

json_t *bench_checkin_msg(const att_catalog *cat)
{
    json_t *safety = att_catalog_safety_json(cat);
    json_t *answers = json_object();
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(safety, "questions"), i, q)
    {
        json_t *hold = json_object_get(q, "hold");
        size_t k;
        json_t *opt;
        json_array_foreach(json_object_get(q, "options"), k, opt)
        {
            const char *id = json_string_value(json_object_get(opt, "id"));
            int held = 0;
            size_t h;
            json_t *hv;
            json_array_foreach(hold, h, hv) held |=
                id && json_string_value(hv) && strcmp(json_string_value(hv), id) == 0;
            if (id && !held) {
                json_object_set_new(answers, json_string_value(json_object_get(q, "id")),
                                    json_string(id));
                break;
            }
        }
    }
    return json_pack("{s:s,s:o}", "type", "checkin", "answers", answers);
}
