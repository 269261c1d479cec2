/*
 * qdb_pool.c - read-only index connections kept for reuse by the worker threads that run
 * queries (C-FIND, C-MOVE / C-GET, QIDO-RS, WADO-RS, STOW-RS's duplicate checks).
 *
 * Opening a connection costs a file open, the schema read and the mt_match registration, so a
 * worker takes one that an earlier request returned (same index path) and gives it back when
 * done. At most POOL_MAX are kept (the libuv pool has 8 threads); a connection given back
 * when the pool is full is closed. A connection is used by one thread at a time: taken ones
 * are not in the pool.
 */
#include <pthread.h>
#include <string.h>

#include "../util/alloc.h"
#include "query.h"

#define POOL_MAX 8

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static mt_qdb_t *pool[POOL_MAX];
static char *pool_path[POOL_MAX];
static size_t n_pool;

mt_qdb_t *mt_qdb_take(const char *index_path)
{
    mt_qdb_t *db = NULL;
    pthread_mutex_lock(&pool_mu);
    for (size_t i = n_pool; i-- > 0;)
        if (strcmp(pool_path[i], index_path) == 0) {
            db = pool[i];
            mt_free(pool_path[i]);
            n_pool--;
            pool[i] = pool[n_pool];
            pool_path[i] = pool_path[n_pool];
            break;
        }
    pthread_mutex_unlock(&pool_mu);
    if (!db && mt_qdb_open(index_path, &db) != 0)
        return NULL;
    return db;
}

void mt_qdb_give(const char *index_path, mt_qdb_t *db)
{
    if (!db)
        return;
    pthread_mutex_lock(&pool_mu);
    if (n_pool < POOL_MAX) {
        pool[n_pool] = db;
        pool_path[n_pool] = mt_strdup(index_path);
        n_pool++;
        db = NULL;
    }
    pthread_mutex_unlock(&pool_mu);
    mt_qdb_close(db);
}
