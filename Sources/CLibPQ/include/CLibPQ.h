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
/* One statement of a pipeline: a prepared statement by `name` with `count` parameters, or (name NULL) `sql`, one
   statement without parameters (BEGIN, SAVEPOINT, COMMIT). */
typedef struct {
    const char *sql;
    const char *name;
    int count;
    const char *const *values;
} deployctl_pq_step;
/* Sends `count` steps in one pipeline with one Sync: one round trip however many there are. Answers the result of the
   first step that failed (its index in *failed; the steps after it did not run) or, when none did, the last step's
   (*failed = -1); NULL when the connection failed (PQerrorMessage says why). */
PGresult *deployctl_pq_pipeline(PGconn *c, const deployctl_pq_step *steps, int count, int *failed);
/* Sends `sql` (one statement without parameters) and returns without waiting for its answer, which
   deployctl_pq_settle reads later: 1 when it was sent. The connection stays in pipeline mode until then. */
int deployctl_pq_send_owing(PGconn *c, const char *sql);
/* Reads the answer deployctl_pq_send_owing left unread and leaves pipeline mode: 1 when the statement succeeded and
   the connection can be used again, 0 when it failed or the connection did. */
int deployctl_pq_settle(PGconn *c);
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
