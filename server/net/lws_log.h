/* lws_log.h - libwebsockets' log lines, written as the server's JSON lines.
 *
 * Owns the lws log hook's state: lws_set_log_level's emit function takes
 * no argument, so the state is the one static in lws_log.c, set on main's
 * thread (srv_log_lws_hook) before the lws context starts; lws calls the
 * emit function on the service thread. */
#ifndef SRV_LWS_LOG_H
#define SRV_LWS_LOG_H

/* lws' log emit function (lws_set_log_level): every line becomes a
 * srv_log line ("lws", or "accept_failed"). `accept: errno N` (EMFILE,
 * ENFILE: lws retries at once, in a busy loop) is written at most once a
 * second and calls on_accept_failure(arg) each time, so the server can
 * pause accepting. */
void srv_log_lws_emit(int level, const char *line);
void srv_log_lws_hook(void (*on_accept_failure)(void *arg), void *arg);

#endif
