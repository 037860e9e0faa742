/* store_pg.c - the PostgreSQL store (store_pg.h). Being written (issue 13). */
typedef int srv_store_pg_c_is_being_written;
