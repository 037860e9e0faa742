/* hasher.c - the password-checking thread (see hasher.h). */
#include "hasher.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/prctl.h>

struct srv_hasher {
    pthread_t thread;
    void (*notify)(void *arg);
    void *arg;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;
    int stopping;
    int pending; /* queued + running + done but not taken */
    srv_hash_job *queue_head, *queue_tail;
    srv_hash_job *done_head, *done_tail;
};

void srv_hash_job_free(srv_hash_job *job)
{
    if (!job)
        return;
    OPENSSL_cleanse(job, sizeof *job);
    free(job);
}

static void *run(void *p)
{
    srv_hasher *h = p;
    (void)prctl(PR_SET_NAME, "attune-hasher"); /* for top -H */
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (!h->stopping && !h->queue_head)
            pthread_cond_wait(&h->wake, &h->lock);
        if (h->stopping)
            break;
        srv_hash_job *job = h->queue_head;
        h->queue_head = job->next;
        if (!h->queue_head)
            h->queue_tail = NULL;
        job->next = NULL;
        pthread_mutex_unlock(&h->lock);
        job->result =
            srv_password_matches(&job->record, job->password, job->password_len, &job->error);
        OPENSSL_cleanse(job->password, sizeof job->password);
        /* A password change: the new hash only once the current one matched. */
        if (job->result == 1 && job->set_new &&
            srv_password_hash_new(job->new_password, job->new_password_len, &job->new_record,
                                  &job->error) < 0)
            job->result = -ATT_ERR_INTERNAL;
        OPENSSL_cleanse(job->new_password, sizeof job->new_password);
        pthread_mutex_lock(&h->lock);
        if (h->done_tail)
            h->done_tail->next = job;
        else
            h->done_head = job;
        h->done_tail = job;
        pthread_mutex_unlock(&h->lock);
        if (h->notify)
            h->notify(h->arg);
        pthread_mutex_lock(&h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

int srv_hasher_start(void (*notify)(void *arg), void *arg, srv_hasher **out, att_error *err)
{
    srv_hasher *h = calloc(1, sizeof *h);
    if (!h)
        return att_fail(err, ATT_ERR_INTERNAL, "hasher: out of memory");
    h->notify = notify;
    h->arg = arg;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->wake, NULL);
    if (pthread_create(&h->thread, NULL, run, h) != 0) {
        pthread_mutex_destroy(&h->lock);
        pthread_cond_destroy(&h->wake);
        free(h);
        return att_fail(err, ATT_ERR_INTERNAL, "hasher: cannot start its thread");
    }
    *out = h;
    return 0;
}

static void free_list(srv_hash_job *j)
{
    while (j) {
        srv_hash_job *next = j->next;
        srv_hash_job_free(j);
        j = next;
    }
}

void srv_hasher_stop(srv_hasher *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->stopping = 1;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    free_list(h->queue_head);
    free_list(h->done_head);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->wake);
    free(h);
}

int srv_hasher_submit(srv_hasher *h, srv_hash_job *job, att_error *err)
{
    pthread_mutex_lock(&h->lock);
    if (h->stopping || h->pending >= SRV_HASHER_MAX_PENDING) {
        pthread_mutex_unlock(&h->lock);
        return att_fail(err, ATT_ERR_RATE_LIMITED, "hasher: too many logins at once");
    }
    h->pending++;
    job->next = NULL;
    if (h->queue_tail)
        h->queue_tail->next = job;
    else
        h->queue_head = job;
    h->queue_tail = job;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

srv_hash_job *srv_hasher_take_done(srv_hasher *h)
{
    pthread_mutex_lock(&h->lock);
    srv_hash_job *list = h->done_head;
    for (srv_hash_job *j = list; j; j = j->next)
        h->pending--;
    h->done_head = h->done_tail = NULL;
    pthread_mutex_unlock(&h->lock);
    return list;
}
