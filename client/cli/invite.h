/* invite.h - invitation URLs: BASE/?room=ROOM#token=TOKEN (the token rides
 * in the fragment so it never reaches an access log; the room, no secret,
 * in the query, where a proxy routes by it; links from before issue 13
 * have no ?room=). Checks a --base-url and
 * parses URLs back for `attune join`; the store library builds them
 * (admin.h, srv_admin_invite_url).
 * Pure functions over caller buffers; owns nothing. */
#ifndef CLI_INVITE_H
#define CLI_INVITE_H

#include <stdint.h>
#include <stdio.h>
#include "attune/room.h"
#include "attune/types.h"
#include "invites.h"
#include "token.h"

#define CLI_INVITE_URL_MAX 1024
#define CLI_HOST_MAX 256

/* 0 when base is an http:// or https:// URL we can put invitations on;
 * else -1 with a message on err. */
int cli_invite_check_base(const char *base, FILE *err);

typedef struct {
    char host[CLI_HOST_MAX]; /* without IPv6 brackets */
    int port;                /* 80 or 443 when the URL names none */
    int tls;                 /* https:// or wss://: join connects with wss:// */
    char token[ATT_MAX_TOKEN_BYTES + 1];
    char room[ATT_ROOM_ID_BYTES + 1]; /* the query's room=, or "" (an older link) */
} cli_invite;

/* Parses http[s]://HOST[:PORT][/PATH][?room=ROOM]#token=TOKEN (ws:// and
 * wss:// are accepted too; other query arguments are ignored, a room= that
 * is not a room id is refused). Returns 0 or -1 with a one-line reason in why. */
int cli_invite_parse(const char *url, cli_invite *out, char *why, size_t why_size);

#endif
