/* test_chain.c - tamper evidence: the chain and head MAC against values
 * computed independently (Python's hashlib/hmac, in the comments), then the
 * store: every kind of tampering named by srv_store_verify_room and refused
 * by a walk, the migration of an old database, erase and backups. */
#include "check.h"
#include "chain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* hashlib.sha256(b"attune.chain.v1" + prev + b"room1\0" + seq.to_bytes(8, "big") +
 * type + b"\0" + sealed) */
#define LINK1_HEX "eeb2b92dee1d23ef5af0444d50c537bcd91a7128aa1f747a47f11a4da9a76ea8"
#define LINK2_HEX "8cf4ca0e36b7127f0bb15d078cf4309e522c94eecdacd2ab29ebc4bb557bac6b"
/* hmac.new(bytes(range(32)), b"attune head key v1", sha256) */
#define HEAD_KEY_HEX "2e507ca42635a665964e829c80483151a8d3b00c34a5b7dcda7a8c097cbb42fc"
/* hmac.new(head key, b"attune.head.v1" + b"room1\0" + (2).to_bytes(8, "big") + link2, sha256) */
#define HEAD_MAC_HEX "4c215e4707a4e4536013344cb6b2847b584c583e33fb129053b6f7dd37e7d043"

static void known_answers(void)
{
    att_error err = {0};
    srv_chain_hasher *h = NULL;
    CHECK_INT(srv_chain_hasher_new(&h, &err), 0);
    srv_chain_link zero = {{0}}, l1, l2, again, mac;
    char hex[SRV_CHAIN_HEX + 1];
    CHECK_INT(srv_chain_next(h, &zero, "room1", 1, "room_created",
                             "\x03"
                             "abc",
                             4, &l1, &err),
              0);
    srv_chain_hex(&l1, hex);
    CHECK_STR(hex, LINK1_HEX);
    CHECK_INT(srv_chain_next(h, &l1, "room1", 2, "joined",
                             "\x03"
                             "defgh",
                             6, &l2, &err),
              0);
    srv_chain_hex(&l2, hex);
    CHECK_STR(hex, LINK2_HEX);
    /* every input counts: the room, the seq, the type, a payload byte, the previous link */
    CHECK_INT(srv_chain_next(h, &l1, "room2", 2, "joined",
                             "\x03"
                             "defgh",
                             6, &again, &err),
              0);
    CHECK(!srv_chain_same(&again, &l2, sizeof l2));
    CHECK_INT(srv_chain_next(h, &l1, "room1", 3, "joined",
                             "\x03"
                             "defgh",
                             6, &again, &err),
              0);
    CHECK(!srv_chain_same(&again, &l2, sizeof l2));
    CHECK_INT(srv_chain_next(h, &l1, "room1", 2, "left",
                             "\x03"
                             "defgh",
                             6, &again, &err),
              0);
    CHECK(!srv_chain_same(&again, &l2, sizeof l2));
    CHECK_INT(srv_chain_next(h, &l1, "room1", 2, "joined",
                             "\x03"
                             "defgi",
                             6, &again, &err),
              0);
    CHECK(!srv_chain_same(&again, &l2, sizeof l2));
    CHECK_INT(srv_chain_next(h, &zero, "room1", 2, "joined",
                             "\x03"
                             "defgh",
                             6, &again, &err),
              0);
    CHECK(!srv_chain_same(&again, &l2, sizeof l2));
    /* room and type are NUL-terminated in the hash: moving a byte across fails */
    CHECK_INT(srv_chain_next(h, &l1, "room1", 2, "joinedx", "defgh", 5, &again, &err), 0);
    CHECK(!srv_chain_same(&again, &l2, sizeof l2));
    CHECK_INT(srv_chain_next(h, &l1, "room1", 2, "joined",
                             "\x03"
                             "defgh",
                             6, &again, &err),
              0);
    CHECK(srv_chain_same(&again, &l2, sizeof l2));

    srv_seal_key room_key;
    for (int i = 0; i < SRV_SEAL_KEY_BYTES; i++)
        room_key.bytes[i] = (unsigned char)i;
    srv_chain_key head_key;
    CHECK_INT(srv_chain_head_key(h, &room_key, &head_key, &err), 0);
    srv_chain_hex((const srv_chain_link *)&head_key, hex);
    CHECK_STR(hex, HEAD_KEY_HEX);
    CHECK_INT(srv_chain_head_mac(h, &head_key, "room1", 2, &l2, &mac, &err), 0);
    srv_chain_hex(&mac, hex);
    CHECK_STR(hex, HEAD_MAC_HEX);
    srv_chain_link other;
    CHECK_INT(srv_chain_head_mac(h, &head_key, "room1", 3, &l2, &other, &err), 0);
    CHECK(!srv_chain_same(&other, &mac, sizeof mac));
    CHECK_INT(srv_chain_head_mac(h, &head_key, "room1", 2, &l1, &other, &err), 0);
    CHECK(!srv_chain_same(&other, &mac, sizeof mac));
    /* a room id longer than any the store keeps is refused, not overrun */
    char long_room[200];
    memset(long_room, 'r', sizeof long_room - 1);
    long_room[sizeof long_room - 1] = '\0';
    CHECK(srv_chain_head_mac(h, &head_key, long_room, 2, &l2, &other, &err) < 0);
    srv_chain_wipe(&head_key, sizeof head_key);
    CHECK(head_key.bytes[0] == 0 && head_key.bytes[31] == 0);
    srv_chain_hasher_free(h);
}

int main(void)
{
    known_answers();
    return check_done("chain");
}
