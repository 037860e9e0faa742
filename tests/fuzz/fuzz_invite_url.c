/* fuzz_invite_url.c - libFuzzer target for `attune join`'s invitation URL
 * parser (cli_invite_parse, client/cli/invite.c, compiled in). The input up
 * to its first NUL is the URL. The parser must not crash or read out of
 * bounds; when it fails it says why; when it succeeds the host is
 * 1..CLI_HOST_MAX-1 bytes, the port 1..65535, tls 0 or 1 and the token 1..
 * ATT_MAX_TOKEN_BYTES bytes without '&', the room "" or a room id, and the
 * URL rebuilt from what it read (http[s]://HOST:PORT/[?room=ROOM]#token=
 * TOKEN, the host in brackets when it holds a character that ends a bare
 * host or starts with '[') parses back to the same. */
#include "invite.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_invite_url: %s\n", what);
    abort();
}

static void check_parsed(const cli_invite *inv)
{
    size_t hlen = strnlen(inv->host, sizeof inv->host);
    size_t tlen = strnlen(inv->token, sizeof inv->token);
    if (hlen == 0 || hlen >= sizeof inv->host)
        fail("empty or unterminated host");
    if (inv->port < 1 || inv->port > 65535)
        fail("port out of range");
    if (inv->tls != 0 && inv->tls != 1)
        fail("tls is neither 0 nor 1");
    if (tlen == 0 || tlen > ATT_MAX_TOKEN_BYTES || tlen >= sizeof inv->token)
        fail("empty, overlong or unterminated token");
    if (memchr(inv->token, '&', tlen))
        fail("the token runs past '&'");
    size_t rlen = strnlen(inv->room, sizeof inv->room);
    if (rlen >= sizeof inv->room)
        fail("unterminated room");
    for (size_t i = 0; i < rlen; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                    inv->room[i]))
            fail("the room is not a room id");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    if (!url)
        abort();
    memcpy(url, data, size);
    url[size] = 0;
    cli_invite inv;
    char why[160];
    why[0] = 0;
    if (cli_invite_parse(url, &inv, why, sizeof why) < 0) {
        if (!why[0])
            fail("failed without saying why");
        free(url);
        return 0;
    }
    check_parsed(&inv);

    int bracket = inv.host[0] == '[' || strpbrk(inv.host, ":/#?") != NULL;
    char again[CLI_HOST_MAX + ATT_MAX_TOKEN_BYTES + ATT_ROOM_ID_BYTES + 80];
    snprintf(again, sizeof again, "%s://%s%s%s:%d/%s%s#token=%s", inv.tls ? "https" : "http",
             bracket ? "[" : "", inv.host, bracket ? "]" : "", inv.port,
             inv.room[0] ? "?room=" : "", inv.room, inv.token);
    cli_invite back;
    if (cli_invite_parse(again, &back, why, sizeof why) < 0)
        fail("the URL rebuilt from a parse does not parse");
    if (strcmp(back.host, inv.host) != 0 || back.port != inv.port || back.tls != inv.tls ||
        strcmp(back.token, inv.token) != 0 || strcmp(back.room, inv.room) != 0)
        fail("the URL rebuilt from a parse reads differently");
    free(url);
    return 0;
}
