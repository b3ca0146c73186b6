/* MPI behind one module: the rest of the program sees rc_dist and the identity of a world of one
 * when MPI is not built in or not started. Every MPI call is checked: its error names the call
 * and the rank. */
#include "config.h"
#include "ramp/dist.h"
#include "ramp/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_MPI
#include <mpi.h>

static int mpi_err(rc_err *e, const char *call, int rank, int status) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(status, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "code %d", status);
    return rc_err_set(e, "%s failed on rank %d: %s", call, rank, text);
}
#define MPI_CHECK(d, call, args) \
    do { \
        int st_ = call args; \
        if (st_ != MPI_SUCCESS) return mpi_err(e, #call, (d)->rank, st_); \
    } while (0)
#endif

const char *rc_dist_build(char *buf, size_t cap) {
#ifdef HAVE_MPI
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, ",\n")] = '\0'; /* "Open MPI v4.1.4, package: ..." */
    snprintf(buf, cap, "with MPI (%s)", lib);
#else
    snprintf(buf, cap, "without MPI");
#endif
    return buf;
}

int rc_dist_init(rc_dist *d, int *argc, char ***argv, rc_err *e) {
    *d = (rc_dist){.rank = 0, .size = 1, .local_rank = 0, .mpi = 0};
#ifdef HAVE_MPI
    /* mpirun's environment (Open MPI, PMI, PMIx): a plain start stays a world of one */
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK")) return 0;
    int st = MPI_Init(argc, argv);
    if (st != MPI_SUCCESS) return mpi_err(e, "MPI_Init", 0, st);
    d->mpi = 1;
    MPI_CHECK(d, MPI_Comm_set_errhandler, (MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_CHECK(d, MPI_Comm_rank, (MPI_COMM_WORLD, &d->rank));
    MPI_CHECK(d, MPI_Comm_size, (MPI_COMM_WORLD, &d->size));
    MPI_Comm node;
    MPI_CHECK(d, MPI_Comm_split_type, (MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank,
                                       MPI_INFO_NULL, &node));
    int lr = 0, st2 = MPI_Comm_rank(node, &lr);
    MPI_Comm_free(&node);
    if (st2 != MPI_SUCCESS) return mpi_err(e, "MPI_Comm_rank", d->rank, st2);
    d->local_rank = lr;
#else
    (void)argc, (void)argv, (void)e;
#endif
    return 0;
}

void rc_dist_finish(rc_dist *d) {
#ifdef HAVE_MPI
    if (d->mpi) MPI_Finalize();
#endif
    d->mpi = 0;
}

void rc_dist_abort(const rc_dist *d, int status) {
#ifdef HAVE_MPI
    if (d && d->mpi && d->size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
    }
#else
    (void)d, (void)status;
#endif
}

void rc_dist_slice(const rc_dist *d, uint32_t n, uint32_t *lo, uint32_t *cnt) {
    uint64_t r = (uint64_t)rc_dist_rank(d), s = (uint64_t)rc_dist_size(d);
    uint32_t a = (uint32_t)(n * r / s), b = (uint32_t)(n * (r + 1) / s);
    *lo = a, *cnt = b - a;
}

#ifdef HAVE_MPI
/* MPI counts are ints: a longer reduction goes in pieces. */
static int reduce_pieces(const rc_dist *d, void *x, size_t n, size_t elem, MPI_Datatype t,
                         MPI_Op op, rc_err *e) {
    for (size_t at = 0; at < n;) {
        size_t k = n - at < (size_t)1 << 30 ? n - at : (size_t)1 << 30;
        MPI_CHECK(d, MPI_Allreduce, (MPI_IN_PLACE, (char *)x + at * elem, (int)k, t, op,
                                     MPI_COMM_WORLD));
        at += k;
    }
    return 0;
}
#endif

int rc_dist_sum_f32(const rc_dist *d, float *x, size_t n, rc_err *e) {
    if (rc_dist_size(d) == 1) return 0;
#ifdef HAVE_MPI
    return reduce_pieces(d, x, n, sizeof *x, MPI_FLOAT, MPI_SUM, e);
#else
    (void)x, (void)n, (void)e;
    return 0;
#endif
}

int rc_dist_sum_f64(const rc_dist *d, double *x, size_t n, rc_err *e) {
    if (rc_dist_size(d) == 1) return 0;
#ifdef HAVE_MPI
    return reduce_pieces(d, x, n, sizeof *x, MPI_DOUBLE, MPI_SUM, e);
#else
    (void)x, (void)n, (void)e;
    return 0;
#endif
}

int rc_dist_max_i32(const rc_dist *d, int *x, int n, rc_err *e) {
    if (rc_dist_size(d) == 1) return 0;
#ifdef HAVE_MPI
    MPI_CHECK(d, MPI_Allreduce, (MPI_IN_PLACE, x, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
#else
    (void)x, (void)n, (void)e;
#endif
    return 0;
}

int rc_dist_max_u8(const rc_dist *d, unsigned char *x, size_t n, rc_err *e) {
    if (rc_dist_size(d) == 1) return 0;
#ifdef HAVE_MPI
    return reduce_pieces(d, x, n, sizeof *x, MPI_UNSIGNED_CHAR, MPI_MAX, e);
#else
    (void)x, (void)n, (void)e;
    return 0;
#endif
}

int rc_dist_allgather(const rc_dist *d, const void *mine, size_t bytes, void *all, rc_err *e) {
    if (rc_dist_size(d) == 1) {
        memmove(all, mine, bytes);
        return 0;
    }
#ifdef HAVE_MPI
    MPI_CHECK(d, MPI_Allgather, (mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE,
                                 MPI_COMM_WORLD));
#else
    (void)e;
#endif
    return 0;
}

int rc_dist_gather_f32(const rc_dist *d, const float *mine, const int *counts, float *all,
                       rc_err *e) {
    int size = rc_dist_size(d);
    if (size == 1) {
        memmove(all, mine, (size_t)counts[0] * sizeof *all);
        return 0;
    }
#ifdef HAVE_MPI
    int *displs = malloc((size_t)size * sizeof *displs);
    if (!displs) return rc_err_set(e, "out of host memory on rank %d", d->rank);
    for (int r = 0, at = 0; r < size; at += counts[r++]) displs[r] = at;
    int st = MPI_Allgatherv(mine, counts[d->rank], MPI_FLOAT, all, counts, displs, MPI_FLOAT,
                            MPI_COMM_WORLD);
    free(displs);
    if (st != MPI_SUCCESS) return mpi_err(e, "MPI_Allgatherv", d->rank, st);
#else
    (void)e;
#endif
    return 0;
}

int rc_dist_sum_buffer(rc_ctx *ctx, const rc_dist *d, cl_mem buf, size_t n, float *host,
                       double *seconds, rc_err *e) {
    if (rc_dist_size(d) == 1) return 0;
    double t0 = rc_now_s();
    if (rc_buffer_read(ctx, buf, 0, n * sizeof *host, host, "the buffer to sum over ranks", e) ||
        rc_dist_sum_f32(d, host, n, e) ||
        rc_buffer_write(ctx, buf, 0, n * sizeof *host, host, "the sum over ranks", e))
        return -1;
    if (seconds) *seconds += rc_now_s() - t0;
    return 0;
}
