/* invite.c - building and parsing invitation URLs (see invite.h). */
#include "invite.h"

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
