/* config_store.h - the server's settings as the store library takes them.
 * The store library (store/) does not see srv_config: its callers on the
 * server side pass these narrow values, filled here from the configuration.
 * Header-only (config.c stays free of the store's and the core's headers);
 * strings are borrowed from cfg. Main's thread, or any thread once the
 * configuration is fixed. */
#ifndef SRV_CONFIG_STORE_H
#define SRV_CONFIG_STORE_H

#include "admin.h"
#include "attune/room.h"
#include "config.h"

/* Where invitation links point and how long they last (admin.h). */
static inline srv_link_options srv_config_links(const srv_config *cfg)
{
    return (srv_link_options){.public_url = cfg->public_url,
                              .host = cfg->listen,
                              .port = cfg->port,
                              .token_ttl_s = cfg->token_ttl_s};
}

/* The rooms' detector clocks, for folds of stored logs (log_fold.h). */
static inline att_room_config srv_config_room(const srv_config *cfg)
{
    return (att_room_config){.silence_ms = cfg->silence_ms,
                             .disconnect_grace_ms = cfg->disconnect_grace_ms};
}

#endif
