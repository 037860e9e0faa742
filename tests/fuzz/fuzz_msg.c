/* fuzz_msg.c - libFuzzer target for the client message decoder. Any input
 * must give 0 or an error code, never a crash, leak or undefined behaviour;
 * an accepted message must survive a re-encode/decode round trip. */
#include "attune/msg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    att_msg msg;
    att_error err;
    int rc = att_msg_decode((const char *)data, size, &msg, &err);
    if (rc == 0) {
        size_t len = 0;
        char *again = att_json_dump(msg.root, &len);
        if (!again)
            abort();
        att_msg second;
        if (att_msg_decode(again, len, &second, &err) != 0 || second.type != msg.type)
            abort();
        att_msg_release(&second);
        free(again);
    } else if (err.code <= ATT_OK || err.code >= ATT_ERR__COUNT) {
        abort();
    }
    att_msg_release(&msg);
    return 0;
}
