/* hasher.h - one thread that checks passwords (scrypt, ~100 ms and 32 MiB
 * each) so the lws service thread never waits for one: logins and password
 * changes queue a job, the thread runs srv_password_matches (and, for a
 * change whose current password matched, srv_password_hash_new on the new
 * one), puts the job on a completion list
 * and calls the notify function (the server's srv_server_wake, i.e.
 * lws_cancel_service). The service thread takes the finished jobs in
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED, the same hand-off as the store's.
 *
 * Threads: srv_hasher_submit and srv_hasher_take_done on the service
 * thread; start/stop on main's thread; the job runs on the hasher thread.
 * Ownership: a submitted job belongs to the hasher until take_done hands it
 * back (the caller frees it, cleansing the password); stop frees jobs never
 * taken back. */
#ifndef SRV_HASHER_H
#define SRV_HASHER_H

#include <stddef.h>
#include <stdint.h>
#include "accounts.h"
#include "attune/types.h"

/* Jobs queued or running at once; more are refused (the login gets 429). */
#define SRV_HASHER_MAX_PENDING 32

typedef struct srv_hash_job srv_hash_job;
struct srv_hash_job {
    srv_hash_job *next;
    uint64_t request_id; /* the caller's; names the waiting request */
    srv_password_record record;
    char password[SRV_PASSWORD_MAX_BYTES];
    size_t password_len;
    /* A password change: the new password, and (written by the hasher
     * thread when the current one matched) its record to store. */
    int set_new;
    char new_password[SRV_PASSWORD_MAX_BYTES];
    size_t new_password_len;
    srv_password_record new_record;
    /* Written by the hasher thread: 1 match, 0 no match, negative error. */
    int result;
    att_error error;
};

typedef struct srv_hasher srv_hasher;

int srv_hasher_start(void (*notify)(void *arg), void *arg, srv_hasher **out, att_error *err);
/* Stops the thread after the running job and frees every job it holds. */
void srv_hasher_stop(srv_hasher *h);
/* Queues job (taken over). Fails (job not taken) when too many are pending. */
int srv_hasher_submit(srv_hasher *h, srv_hash_job *job, att_error *err);
/* Every finished job, oldest first (a NULL-terminated list by next). */
srv_hash_job *srv_hasher_take_done(srv_hasher *h);
/* Frees a job, wiping the password and record. */
void srv_hash_job_free(srv_hash_job *job);

#endif
