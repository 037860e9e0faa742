/* list.h - the room service's intrusive doubly linked lists (members of a
 * room, a room's jobs, the rooms with a state to send). A srv_list_link is
 * embedded in the listed struct; SRV_CONTAINER_OF gets the struct back.
 *
 * Owns nothing: the listed structs belong to whoever allocated them. Not
 * thread-safe; the room service uses them on the service thread only. */
#ifndef SRV_LIST_H
#define SRV_LIST_H

#include <stddef.h>

#define SRV_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

typedef struct srv_list_link {
    struct srv_list_link *prev, *next;
} srv_list_link;

typedef struct {
    srv_list_link *head, *tail;
    size_t count;
} srv_list;

static inline void srv_list_add_tail(srv_list *l, srv_list_link *k)
{
    k->next = NULL;
    k->prev = l->tail;
    if (l->tail)
        l->tail->next = k;
    else
        l->head = k;
    l->tail = k;
    l->count++;
}

/* k must be on l. */
static inline void srv_list_remove(srv_list *l, srv_list_link *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        l->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        l->tail = k->prev;
    k->prev = k->next = NULL;
    l->count--;
}

/* Walks l; the body may remove (and free) the current link. */
#define SRV_LIST_FOR_EACH_SAFE(l, k, k_next)                                                       \
    for (srv_list_link *k = (l)->head, *k_next = k ? k->next : NULL; k;                            \
         k = k_next, k_next = k ? k->next : NULL)

#endif
