/* Data parallelism across processes, one OpenCL device each, with MPI (src/runtime/dist.c).
 * A build without MPI, or a process not started by mpirun, is a world of one process: every call
 * is then the identity, so the callers need no #ifdef. A NULL rc_dist is a world of one too. */
#ifndef RAMP_DIST_H
#define RAMP_DIST_H

#include "ramp/device.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rc_dist {
    int rank, size;  /* this process in MPI_COMM_WORLD, and the number of processes */
    int local_rank;  /* among the processes on this node: the device it takes by default */
    int mpi;         /* MPI was initialised (rc_dist_finish finalises it) */
} rc_dist;

/* Whether this build has MPI ("with MPI (Open MPI 4.1.4)" or "without MPI"), for --version. */
const char *rc_dist_build(char *buf, size_t cap);

/* Initialise MPI when the process was started by mpirun (its environment says so); otherwise
 * a world of one. */
int rc_dist_init(rc_dist *d, int *argc, char ***argv, rc_err *e);
void rc_dist_finish(rc_dist *d);
/* End every process of the job (after an error was reported): the others may be waiting in a
 * collective call for this one. Returns only in a world of one. */
void rc_dist_abort(const rc_dist *d, int status);

static inline int rc_dist_size(const rc_dist *d) { return d ? d->size : 1; }
static inline int rc_dist_rank(const rc_dist *d) { return d ? d->rank : 0; }

/* This process's share of n items (a batch, test points): [*lo, *lo + *cnt), in rank order,
 * sizes differing by at most one. */
void rc_dist_slice(const rc_dist *d, uint32_t n, uint32_t *lo, uint32_t *cnt);

/* Sums over every process, in place (MPI_Allreduce; the order of the reduction is fixed by the
 * algorithm MPI chooses for the world size and length, not by which process comes first). */
int rc_dist_sum_f32(const rc_dist *d, float *x, size_t n, rc_err *e);
int rc_dist_sum_f64(const rc_dist *d, double *x, size_t n, rc_err *e);
/* The maximum over every process of each x[i], in place. */
int rc_dist_max_i32(const rc_dist *d, int *x, int n, rc_err *e);
int rc_dist_max_u8(const rc_dist *d, unsigned char *x, size_t n, rc_err *e);
/* Every process's `bytes` bytes of `mine`, in rank order, into all[size * bytes]. */
int rc_dist_allgather(const rc_dist *d, const void *mine, size_t bytes, void *all, rc_err *e);
/* Every process's counts[rank] floats, in rank order, into all (MPI_Allgatherv). */
int rc_dist_gather_f32(const rc_dist *d, const float *mine, const int *counts, float *all,
                       rc_err *e);
/* The sum over every process of the first n floats of a device buffer, in place, staged through
 * host[n]; *seconds adds the time spent (transfers and MPI). */
int rc_dist_sum_buffer(rc_ctx *ctx, const rc_dist *d, cl_mem buf, size_t n, float *host,
                       double *seconds, rc_err *e);

#endif
