/* test_invite.c - `attune join`'s invitation URL parser (cli_invite_parse,
 * invite.h): the four schemes and which of them mean TLS, their default
 * ports, an explicit port, an [IPv6] host, the token among other fragment
 * parameters, the room of the query (?room=ID, issue 13; none in older
 * links), and each refusal with its reason. */
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

static void room_of(const char *url, const char *room, const char *token)
{
    cli_invite inv;
    char why[160] = "";
    int rc = cli_invite_parse(url, &inv, why, sizeof why);
    CHECK_MSG(rc == 0, "%s: %s", url, why);
    if (rc != 0)
        return;
    CHECK_STR(inv.room, room);
    CHECK_STR(inv.token, token);
}

int main(void)
{
    /* the room rides in the query, the token in the fragment */
    room_of("http://127.0.0.1:8080/?room=demo-x1#token=abc", "demo-x1", "abc");
    room_of("https://example.org/attune/?room=r_2#token=t", "r_2", "t");
    room_of("https://h?room=r#token=t", "r", "t");
    room_of("https://h/?v=1&room=r&w=2#token=t", "r", "t");
    room_of("https://h/?roomy=1#token=t", "", "t");         /* not room= */
    room_of("http://127.0.0.1:8080/#token=abc", "", "abc"); /* a link from before issue 13 */
    room_of("https://h/#token=t&room=x", "", "t");          /* the fragment is not the query */
    parses("http://[::1]:9/?room=r#token=t", "::1", 9, 0, "t");
    refuses("https://h/?room=#token=t", "room= in the URL is not a room id");
    refuses("https://h/?room#token=t", "room= in the URL is not a room id");
    refuses("https://h/?room=a%20b#token=t", "room= in the URL is not a room id");
    refuses("https://h/?room=a.b#token=t", "room= in the URL is not a room id");
    refuses("https://h/?room=a&room=b#token=t", "room= in the URL is not a room id");
    char long_room[200];
    strcpy(long_room, "https://h/?room=");
    size_t r_at = strlen(long_room);
    memset(long_room + r_at, 'r', ATT_ROOM_ID_BYTES + 1);
    strcpy(long_room + r_at + ATT_ROOM_ID_BYTES + 1, "#token=t");
    refuses(long_room, "room= in the URL is not a room id");
    memmove(long_room + r_at + ATT_ROOM_ID_BYTES, long_room + r_at + ATT_ROOM_ID_BYTES + 1,
            strlen(long_room + r_at + ATT_ROOM_ID_BYTES + 1) + 1); /* exactly 64 */
    cli_invite longest;
    char lwhy[160] = "";
    CHECK_MSG(cli_invite_parse(long_room, &longest, lwhy, sizeof lwhy) == 0, "%s", lwhy);
    CHECK_INT(strlen(longest.room), ATT_ROOM_ID_BYTES);

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
