#ifndef DEPLOYCTL_CLIBPQ_H
#define DEPLOYCTL_CLIBPQ_H

/* The part of libpq the PostgreSQL store uses. libpq is loaded on first use (dlopen), like libarchive: only
   `--database postgres://...` needs it, and linking it would make every command load libpq, libssl, GSSAPI and LDAP
   at start-up. This header names no libpq header, so nothing but LibPQLoader.c needs libpq-dev to build; enums are
   ints here (the values below are libpq's, checked by LibPQLoader.c against libpq-fe.h). */
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

/* NULL once loaded, or why it could not be (what to install). */
const char *deployctl_libpq_load(void);

/* PQconnectdb; NULL when libpq could not be loaded. */
PGconn *deployctl_pq_connect(const char *conninfo);
int deployctl_pq_status_ok(const PGconn *c);
const char *deployctl_pq_error_message(const PGconn *c);
void deployctl_pq_finish(PGconn *c);
PGresult *deployctl_pq_exec(PGconn *c, const char *query);
PGresult *deployctl_pq_exec_params(PGconn *c, const char *query, int count, const char *const *values);
PGresult *deployctl_pq_prepare(PGconn *c, const char *name, const char *query, int count);
PGresult *deployctl_pq_exec_prepared(PGconn *c, const char *name, int count, const char *const *values);
/* `prefix` (a statement without parameters or rows, such as BEGIN or SAVEPOINT) and then the prepared statement
   `name`, sent together in one pipeline: one round trip instead of two. Answers the prefix's result when it failed
   (the statement did not run), else the statement's; NULL when the connection failed (PQerrorMessage says why). */
PGresult *deployctl_pq_exec_prepared_after(PGconn *c, const char *prefix, const char *name, int count, const char *const *values);
/* Whether the connection is out of pipeline mode (one left in it, after a failure, must not be reused). */
int deployctl_pq_pipeline_off(const PGconn *c);
/* 1: a command without rows; 2: rows; anything else failed. */
int deployctl_pq_result_status(const PGresult *r);
/* The five-character SQLSTATE, or NULL. */
const char *deployctl_pq_sqlstate(const PGresult *r);
const char *deployctl_pq_result_error(const PGresult *r);
int deployctl_pq_rows(const PGresult *r);
int deployctl_pq_columns(const PGresult *r);
const char *deployctl_pq_value(const PGresult *r, int row, int column);
int deployctl_pq_is_null(const PGresult *r, int row, int column);
const char *deployctl_pq_affected(PGresult *r);
void deployctl_pq_clear(PGresult *r);
int deployctl_pq_socket(const PGconn *c);
int deployctl_pq_consume_input(PGconn *c);
/* The next notification received (1), or none (0): its channel and payload, each cut to its buffer's size - 1. */
int deployctl_pq_next_notification(PGconn *c, char *channel, int channel_size, char *payload, int payload_size, int *sender);
/* 0 idle, 2 in a transaction, 3 in a failed transaction, 4 the connection is bad (libpq's PGTransactionStatusType). */
int deployctl_pq_transaction_status(const PGconn *c);
int deployctl_pq_backend_pid(const PGconn *c);
#endif
