/* test_invite.c - `attune join`'s invitation URL parser (cli_invite_parse,
 * invite.h): the four schemes and which of them mean TLS, their default
 * ports, an explicit port, an [IPv6] host, the token among other fragment
 * parameters, and each refusal with its reason. */
#include "check.h"
#include "invite.h"

#include <string.h>

static void parses(const char *url, const char *host, int port, int tls, const char *token)
{
    cli_invite inv;
    char why[160] = "";
    int rc = cli_invite_parse(url, &inv, why, sizeof why);
    CHECK_MSG(rc == 0, "%s: %s", url, why);
    if (rc != 0)
        return;
    CHECK_STR(inv.host, host);
    CHECK_MSG(inv.port == port, "%s: port %d, want %d", url, inv.port, port);
    CHECK_MSG(inv.tls == tls, "%s: tls %d, want %d", url, inv.tls, tls);
    CHECK_STR(inv.token, token);
}

static void refuses(const char *url, const char *reason)
{
    cli_invite inv;
    char why[160] = "";
    CHECK_MSG(cli_invite_parse(url, &inv, why, sizeof why) < 0, "%s was accepted", url);
    CHECK_MSG(strstr(why, reason) != NULL, "%s: \"%s\", want \"%s\"", url, why, reason);
}

int main(void)
{
    parses("http://127.0.0.1:8080/#token=abc", "127.0.0.1", 8080, 0, "abc");
    parses("http://example.org/#token=abc", "example.org", 80, 0, "abc");
    parses("https://example.org/#token=abc", "example.org", 443, 1, "abc");
    parses("https://example.org:8443/attune/#token=abc", "example.org", 8443, 1, "abc");
    parses("ws://h/#token=t", "h", 80, 0, "t");
    parses("wss://h/#token=t", "h", 443, 1, "t");
    parses("https://[::1]/#token=t", "::1", 443, 1, "t");
    parses("http://[2001:db8::5]:9/#token=t", "2001:db8::5", 9, 0, "t");
    parses("https://h#token=t", "h", 443, 1, "t");
    parses("https://h/#lang=en&token=t&x=1", "h", 443, 1, "t");

    refuses("ftp://h/#token=t", "expected an invitation URL");
    refuses("https://h/", "no #token=");
    refuses("https://h/#xtoken=t", "no #token=");
    refuses("https://h/#token=", "empty or overlong token");
    refuses("https://h:0/#token=t", "bad port");
    refuses("https://h:65536/#token=t", "bad port");
    refuses("https://h:/#token=t", "bad port");
    refuses("https://[::1/#token=t", "unterminated [IPv6] host");
    refuses("https:///#token=t", "missing or overlong host");
    char long_host[CLI_HOST_MAX + 40];
    memcpy(long_host, "https://", 8);
    memset(long_host + 8, 'h', CLI_HOST_MAX);
    strcpy(long_host + 8 + CLI_HOST_MAX, "/#token=t");
    refuses(long_host, "missing or overlong host");
    char long_token[ATT_MAX_TOKEN_BYTES + 40];
    strcpy(long_token, "https://h/#token=");
    size_t at = strlen(long_token);
    memset(long_token + at, 'a', ATT_MAX_TOKEN_BYTES + 1);
    long_token[at + ATT_MAX_TOKEN_BYTES + 1] = '\0';
    refuses(long_token, "empty or overlong token");
    long_token[at + ATT_MAX_TOKEN_BYTES] = '\0'; /* exactly the longest token */
    cli_invite inv;
    char why[160];
    CHECK(cli_invite_parse(long_token, &inv, why, sizeof why) == 0);
    CHECK_INT(strlen(inv.token), ATT_MAX_TOKEN_BYTES);
    return check_done("invite");
}
