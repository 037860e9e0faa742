/* invite.c - building and parsing invitation URLs (see invite.h). */
#include "invite.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int cli_invite_check_base(const char *base, FILE *err)
{
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
        fprintf(err, "attune: --base-url must start with http:// or https://\n");
        return -1;
    }
    if (strchr(base, '#') || strchr(base, '?') || strlen(base) > 512) {
        fprintf(err, "attune: --base-url must be a plain URL (no ? or #, at most 512 bytes)\n");
        return -1;
    }
    return 0;
}

/* The room of the query in [p, end) (?room=ID, among other arguments):
 * 0 with room set ("" when the URL names none), -1 when room= is empty,
 * not a room id (1..64 of A-Z a-z 0-9 - _; no escapes) or given twice. */
static int query_room(const char *p, const char *end, char room[ATT_ROOM_ID_BYTES + 1])
{
    room[0] = '\0';
    const char *q = memchr(p, '?', (size_t)(end - p));
    if (!q)
        return 0;
    for (const char *arg = q + 1; arg < end;) {
        const char *arg_end = memchr(arg, '&', (size_t)(end - arg));
        if (!arg_end)
            arg_end = end;
        size_t n = (size_t)(arg_end - arg);
        if (n >= 4 && memcmp(arg, "room", 4) == 0 && (n == 4 || arg[4] == '=')) {
            const char *id = arg + 5;
            size_t len = n > 5 ? n - 5 : 0;
            if (room[0] || len == 0 || len > ATT_ROOM_ID_BYTES)
                return -1;
            for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char)id[i]) && id[i] != '-' && id[i] != '_')
                    return -1;
            memcpy(room, id, len);
            room[len] = '\0';
        }
        arg = arg_end + 1;
    }
    return 0;
}

int cli_invite_parse(const char *url, cli_invite *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    static const struct {
        const char *scheme;
        int tls;
    } schemes[] = {{"http://", 0}, {"https://", 1}, {"ws://", 0}, {"wss://", 1}};
    const char *p = NULL;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0] && !p; i++) {
        size_t n = strlen(schemes[i].scheme);
        if (strncmp(url, schemes[i].scheme, n) == 0) {
            p = url + n;
            out->tls = schemes[i].tls;
        }
    }
    if (!p) {
        snprintf(why, why_size, "expected an invitation URL like http://HOST:PORT/#token=...");
        return -1;
    }
    const char *host_end;
    const char *host = p;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end) {
            snprintf(why, why_size, "unterminated [IPv6] host");
            return -1;
        }
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/#?");
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof out->host) {
        snprintf(why, why_size, "missing or overlong host");
        return -1;
    }
    memcpy(out->host, host, hlen);
    out->port = out->tls ? 443 : 80;
    if (*p == ':') {
        char *end = NULL;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535) {
            snprintf(why, why_size, "bad port");
            return -1;
        }
        out->port = (int)port;
        p = end;
    }
    const char *frag = strchr(p, '#');
    if (query_room(p, frag ? frag : p + strlen(p), out->room) < 0) {
        snprintf(why, why_size, "room= in the URL is not a room id");
        return -1;
    }
    if (!frag) {
        snprintf(why, why_size, "no #token=... in the URL");
        return -1;
    }
    const char *tok = strstr(frag, "token=");
    if (!tok || (tok != frag + 1 && tok[-1] != '&')) {
        snprintf(why, why_size, "no #token=... in the URL");
        return -1;
    }
    tok += 6;
    size_t tlen = strcspn(tok, "&");
    if (tlen == 0 || tlen > ATT_MAX_TOKEN_BYTES) {
        snprintf(why, why_size, "empty or overlong token");
        return -1;
    }
    memcpy(out->token, tok, tlen);
    return 0;
}
