/* fuzz_blame.c - libFuzzer target for the blame classifier: any bytes, in
 * every language, must classify to one of the three classes without a crash,
 * an out-of-bounds read (the input is not NUL-terminated) or undefined
 * behaviour; without a NUL inside, the catalog's NUL-terminated entry point
 * must agree (the same text classifies the same way). */
#include "attune/blame.h"
#include "attune/catalog.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const langs[] = {"en", "es", "fr", "de"};

static const att_catalog *catalog(void)
{
    static att_catalog *cat;
    if (!cat) {
        att_error err = {0};
        if (att_catalog_load_dir(ATTUNE_PROTOCOL_DIR, &cat, &err) != 0) {
            fprintf(stderr, "fuzz_blame: %s\n", err.message);
            abort();
        }
    }
    return cat;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const att_catalog *cat = catalog();
    /* a copy of exactly size bytes, so ASan sees any read past the end */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    size_t upto = 0; /* the catalog API reads up to the first NUL */
    while (upto < size && text[upto])
        upto++;
    char *z = malloc(upto + 1);
    if (!z)
        abort();
    memcpy(z, text, upto);
    z[upto] = 0;
    for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++) {
        const att_blame_lang *lang = att_catalog_blame_lang(cat, langs[i]);
        if (!lang)
            abort();
        int rule = -2;
        att_blame_class c = att_blame_classify(lang, text, size, &rule);
        if (c != ATT_BLAME_NONE && c != ATT_BLAME_CRITICISM && c != ATT_BLAME_CONTEMPT)
            abort();
        if ((c == ATT_BLAME_NONE) != (rule == -1) || rule >= (int)att_blame_lang_rule_count(lang))
            abort();
        /* deterministic, and the same through the catalog (up to a NUL) */
        if (upto == size && att_catalog_blame_classify(cat, langs[i], z) != c)
            abort();
    }
    free(z);
    free(text);
    return 0;
}
