/* room_id.h - what a room id is: 1..64 bytes of [A-Za-z0-9_-]. The store
 * keys rooms by it, tokens and links carry it, URLs and file-free logs show
 * it, so nothing else needs escaping. Pure; any thread. */
#ifndef SRV_ROOM_ID_H
#define SRV_ROOM_ID_H

#define SRV_ROOM_ID_MAX 64

/* 1 when id is a valid room id, else 0. */
int srv_room_id_valid(const char *id);

#endif
