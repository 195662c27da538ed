#include <libpq-fe.h>

#include "CLibPQ.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

_Static_assert(PGRES_COMMAND_OK == 1 && PGRES_TUPLES_OK == 2, "libpq's result statuses");
_Static_assert(PQTRANS_IDLE == 0 && PQTRANS_INTRANS == 2 && PQTRANS_INERROR == 3 && PQTRANS_UNKNOWN == 4,
               "libpq's transaction statuses");

/* Each function deployctl calls, by name, typed by libpq-fe.h's declarations. */
#define LIBPQ_SYMBOLS(X)                                                                                              \
    X(PQconnectdb) X(PQstatus) X(PQerrorMessage) X(PQfinish) X(PQexec) X(PQexecParams) X(PQprepare)                 \
    X(PQexecPrepared) X(PQresultStatus) X(PQresultErrorField) X(PQresultErrorMessage) X(PQntuples) X(PQnfields)     \
    X(PQgetvalue) X(PQgetisnull) X(PQcmdTuples) X(PQclear) X(PQsocket) X(PQconsumeInput) X(PQnotifies)              \
    X(PQfreemem) X(PQtransactionStatus) X(PQbackendPID) X(PQenterPipelineMode) X(PQexitPipelineMode)              \
    X(PQpipelineSync) X(PQpipelineStatus) X(PQsendQueryParams) X(PQsendQueryPrepared) X(PQgetResult)

#define DECLARE(name) static __typeof__(&name) real_##name;
LIBPQ_SYMBOLS(DECLARE)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512];
static int loaded;

static void load(void) {
    void *library = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(failure, sizeof failure, "cannot load libpq (%s); on Debian or Ubuntu: apt-get install libpq5", dlerror());
        return;
    }
#define RESOLVE(name)                                                                                                 \
    real_##name = (__typeof__(&name))dlsym(library, #name);                                                           \
    if (!real_##name) {                                                                                               \
        snprintf(failure, sizeof failure, "the installed libpq has no %s; deployctl needs libpq 14 or later", #name); \
        return;                                                                                                       \
    }
    LIBPQ_SYMBOLS(RESOLVE)
    loaded = 1;
}

const char *deployctl_libpq_load(void) {
    pthread_once(&once, load);
    return loaded ? NULL : failure;
}

PGconn *deployctl_pq_connect(const char *conninfo) { return deployctl_libpq_load() ? NULL : real_PQconnectdb(conninfo); }
int deployctl_pq_status_ok(const PGconn *c) { return real_PQstatus(c) == CONNECTION_OK; }
const char *deployctl_pq_error_message(const PGconn *c) { return real_PQerrorMessage(c); }
void deployctl_pq_finish(PGconn *c) { real_PQfinish(c); }
PGresult *deployctl_pq_exec(PGconn *c, const char *query) { return real_PQexec(c, query); }
PGresult *deployctl_pq_exec_params(PGconn *c, const char *query, int count, const char *const *values) {
    return real_PQexecParams(c, query, count, NULL, values, NULL, NULL, 0);
}
PGresult *deployctl_pq_prepare(PGconn *c, const char *name, const char *query, int count) {
    (void)count;
    return real_PQprepare(c, name, query, 0, NULL);
}
PGresult *deployctl_pq_exec_prepared(PGconn *c, const char *name, int count, const char *const *values) {
    return real_PQexecPrepared(c, name, count, values, NULL, NULL, 0);
}
PGresult *deployctl_pq_pipeline(PGconn *c, const deployctl_pq_step *steps, int count, int *failed) {
    *failed = -1;
    if (count <= 0 || !real_PQenterPipelineMode(c)) return NULL;
    PGresult *answer = NULL;
    int sent = 1;
    for (int i = 0; i < count && sent; i++) {
        const deployctl_pq_step *step = &steps[i];
        sent = step->name ? real_PQsendQueryPrepared(c, step->name, step->count, step->values, NULL, NULL, 0)
                          : real_PQsendQueryParams(c, step->sql, 0, NULL, NULL, NULL, NULL, 0);
    }
    if (sent && real_PQpipelineSync(c)) {
        /* Each step's results up to its NULL (a step after a failure answers PGRES_PIPELINE_ABORTED), then the sync. */
        for (int i = 0; i < count; i++) {
            PGresult *r;
            while ((r = real_PQgetResult(c)) != NULL) {
                ExecStatusType status = real_PQresultStatus(r);
                int bad = status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
                if (*failed < 0 && bad && status != PGRES_PIPELINE_ABORTED) {
                    real_PQclear(answer);
                    answer = r;
                    *failed = i;
                } else if (*failed < 0 && i == count - 1 && !answer) {
                    answer = r;
                } else {
                    real_PQclear(r);
                }
            }
        }
        PGresult *r;
        while ((r = real_PQgetResult(c)) != NULL) {
            int sync = real_PQresultStatus(r) == PGRES_PIPELINE_SYNC;
            real_PQclear(r);
            if (sync) break;
        }
    }
    if (!real_PQexitPipelineMode(c) && answer) {
        /* Results left unread: the connection is not in a state to reuse (deployctl_pq_pipeline_off says so). */
        real_PQclear(answer);
        answer = NULL;
    }
    return answer;
}
int deployctl_pq_send_owing(PGconn *c, const char *sql) {
    if (!real_PQenterPipelineMode(c)) return 0;
    return real_PQsendQueryParams(c, sql, 0, NULL, NULL, NULL, NULL, 0) && real_PQpipelineSync(c);
}
int deployctl_pq_settle(PGconn *c) {
    int ok = 1, results = 0;
    PGresult *r;
    while ((r = real_PQgetResult(c)) != NULL) {
        ExecStatusType status = real_PQresultStatus(r);
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) ok = 0;
        results++;
        real_PQclear(r);
    }
    if (results == 0) ok = 0;
    int synced = 0;
    while ((r = real_PQgetResult(c)) != NULL) {
        synced = synced || real_PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        real_PQclear(r);
        if (synced) break;
    }
    return real_PQexitPipelineMode(c) && ok && synced;
}
int deployctl_pq_pipeline_off(const PGconn *c) { return real_PQpipelineStatus(c) == PQ_PIPELINE_OFF; }
int deployctl_pq_result_status(const PGresult *r) { return r ? (int)real_PQresultStatus(r) : -1; }
const char *deployctl_pq_sqlstate(const PGresult *r) { return r ? real_PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL; }
const char *deployctl_pq_result_error(const PGresult *r) { return r ? real_PQresultErrorMessage(r) : ""; }
int deployctl_pq_rows(const PGresult *r) { return real_PQntuples(r); }
int deployctl_pq_columns(const PGresult *r) { return real_PQnfields(r); }
const char *deployctl_pq_value(const PGresult *r, int row, int column) { return real_PQgetvalue(r, row, column); }
int deployctl_pq_is_null(const PGresult *r, int row, int column) { return real_PQgetisnull(r, row, column); }
const char *deployctl_pq_affected(PGresult *r) { return real_PQcmdTuples(r); }
void deployctl_pq_clear(PGresult *r) {
    if (r) real_PQclear(r);
}
int deployctl_pq_socket(const PGconn *c) { return real_PQsocket(c); }
int deployctl_pq_consume_input(PGconn *c) { return real_PQconsumeInput(c); }
int deployctl_pq_next_notification(PGconn *c, char *channel, int channel_size, char *payload, int payload_size, int *sender) {
    PGnotify *notify = real_PQnotifies(c);
    if (!notify) return 0;
    snprintf(channel, (size_t)channel_size, "%s", notify->relname);
    snprintf(payload, (size_t)payload_size, "%s", notify->extra ? notify->extra : "");
    *sender = notify->be_pid;
    real_PQfreemem(notify);
    return 1;
}
int deployctl_pq_transaction_status(const PGconn *c) { return (int)real_PQtransactionStatus(c); }
int deployctl_pq_backend_pid(const PGconn *c) { return real_PQbackendPID(c); }
