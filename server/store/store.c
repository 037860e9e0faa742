/* store.c - dispatches store.h to the SQLite or the PostgreSQL store
 * (store_backend.h). Being written (issue 13). */
typedef int srv_store_c_is_being_written;
