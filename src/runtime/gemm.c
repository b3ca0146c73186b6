#include "ramp/gemm.h"
#include "ramp/clock.h"
#include "ramp/launch.h"
#include "ramp/program.h"

#include <clblast_c.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IMPL_CLBLAST = 1, IMPL_OWN = 2 };

typedef struct gemm_params {
    int mr[2], nr[2];   /* gemm_micro tile (rows x columns per work-item), per work-item order */
    int dm, dn;         /* gemm_dot tile */
    int kc;             /* k per part when K is split */
    int split;          /* -1 auto, 0 never, 1 always (when K > kc) */
    int order;          /* gemm_micro work-item order: -1 auto, 0 rows of tiles first, 1 columns */
    int dot;            /* A x B^T by gemm_dot: -1 auto, 0 never, 1 always */
    int local;          /* gemm_micro_local where it applies: -1 auto, 0 never, 1 always */
    size_t panel_bytes; /* packed op(B) per pass, rows first with a packed A that fits in L2 */
    size_t panel2_bytes; /* the same otherwise (B then has to stay in cache) */
    size_t a_bytes;     /* packed op(A) per pass */
} gemm_params;

struct rc_gemm_state {
    int impl;
    gemm_params p;
    struct {
        cl_kernel pack[4], micro, local; /* pack: a_x, a_y, b_x, b_y; local: gemm_micro_local */
        cl_kernel conv_fwd, conv_bwd, conv_wt; /* implicit-GEMM convolution */
        size_t local_items;              /* largest work-group of gemm_micro_local */
        size_t conv_items;               /* the same for conv_gemm_fwd and conv_gemm_bwd_data */
    } ks[2];                             /* for tiles mr[i] x nr[i] */
    size_t local_bytes;                  /* the device's local memory */
    cl_kernel dot, reduce;
    cl_mem buf[3]; /* packed A, packed B, split parts */
    size_t cap[3]; /* floats */
};

enum { BUF_A, BUF_B, BUF_PART };
static const char *const buf_name[] = {"GEMM packed A", "GEMM packed B", "GEMM split parts"};

/* "auto" -1, `no` 0, `yes` 1, anything else -2 */
static int choice(const char *v, const char *no, const char *yes) {
    return strcmp(v, "auto") == 0 ? -1 : strcmp(v, no) == 0 ? 0 : strcmp(v, yes) == 0 ? 1 : -2;
}

static int parse_params(const char *s, gemm_params *p, rc_err *e) {
    while (s && *s) {
        char key[16];
        char val[32];
        int used = 0;
        if (sscanf(s, "%15[^=]=%31[^,]%n", key, val, &used) != 2)
            return rc_err_set(e, "RAMP_CL_GEMM_PARAMS: cannot read \"%s\" (expected key=value,...)",
                              s);
        char *end;
        long v = strtol(val, &end, 10);
        int num = *end == '\0';
        if (strcmp(key, "mr") == 0 && num && v >= 1 && v <= 16) p->mr[0] = (int)v;
        else if (strcmp(key, "nr") == 0 && num && (v == 16 || v == 32)) p->nr[0] = (int)v;
        else if (strcmp(key, "cmr") == 0 && num && v >= 1 && v <= 16) p->mr[1] = (int)v;
        else if (strcmp(key, "cnr") == 0 && num && (v == 16 || v == 32)) p->nr[1] = (int)v;
        else if (strcmp(key, "dm") == 0 && num && v >= 1 && v <= 8) p->dm = (int)v;
        else if (strcmp(key, "dn") == 0 && num && v >= 1 && v <= 8) p->dn = (int)v;
        else if (strcmp(key, "kc") == 0 && num && v >= 1 && v <= 1 << 20) p->kc = (int)v;
        else if (strcmp(key, "panel") == 0 && num && v >= 1 && v <= 4096)
            p->panel_bytes = (size_t)v << 20;
        else if (strcmp(key, "panel2") == 0 && num && v >= 1 && v <= 4096)
            p->panel2_bytes = (size_t)v << 20;
        else if (strcmp(key, "apanel") == 0 && num && v >= 1 && v <= 4096)
            p->a_bytes = (size_t)v << 20;
        else if (strcmp(key, "split") == 0 && (p->split = choice(val, "never", "always")) != -2) {
        } else if (strcmp(key, "dot") == 0 && (p->dot = choice(val, "never", "always")) != -2) {
        } else if (strcmp(key, "order") == 0 && (p->order = choice(val, "rows", "cols")) != -2) {
        } else if (strcmp(key, "local") == 0 && (p->local = choice(val, "never", "always")) != -2) {
        } else
            return rc_err_set(e, "RAMP_CL_GEMM_PARAMS: bad setting %s=%s (mr and cmr 1-16, nr "
                                 "and cnr 16|32, dm and dn 1-8, kc >= 1, panel, panel2 and "
                                 "apanel 1-4096 MiB, split, dot and local auto|never|always, "
                                 "order auto|rows|cols)",
                              key, val);
        s += used;
        if (*s == ',') s++;
    }
    return 0;
}

static struct rc_gemm_state *state(rc_ctx *ctx, rc_err *e) {
    if (ctx->gemm) return ctx->gemm;
    struct rc_gemm_state *st = calloc(1, sizeof *st);
    if (!st) {
        rc_err_set(e, "out of host memory for the GEMM state");
        return NULL;
    }
    st->impl = ctx->cls == RC_CLASS_CPU ? IMPL_OWN : IMPL_CLBLAST;
    const char *env = getenv("RAMP_CL_GEMM");
    if (env && *env) {
        if (strcmp(env, "own") == 0) st->impl = IMPL_OWN;
        else if (strcmp(env, "clblast") == 0) st->impl = IMPL_CLBLAST;
        else {
            free(st);
            rc_err_set(e, "RAMP_CL_GEMM=%s: expected own or clblast", env);
            return NULL;
        }
    }
    st->p = (gemm_params){.mr = {4, 8}, .nr = {32, 16}, .dm = 4, .dn = 6, .kc = 1024, .split = -1,
                          .order = -1, .dot = -1, .local = -1, .panel_bytes = (size_t)64 << 20,
                          .panel2_bytes = (size_t)2 << 20, .a_bytes = (size_t)64 << 20};
    if (parse_params(getenv("RAMP_CL_GEMM_PARAMS"), &st->p, e)) {
        free(st);
        return NULL;
    }
    ctx->gemm = st;
    return st;
}

const char *rc_gemm_impl(rc_ctx *ctx, rc_err *e) {
    struct rc_gemm_state *st = state(ctx, e);
    if (!st) return NULL;
    return st->impl == IMPL_OWN ? "own" : "clblast";
}

void rc_gemm_release(rc_ctx *ctx) {
    struct rc_gemm_state *st = ctx->gemm;
    if (!st) return;
    for (int v = 0; v < 2; v++) {
        for (int i = 0; i < 4; i++)
            if (st->ks[v].pack[i]) clReleaseKernel(st->ks[v].pack[i]);
        cl_kernel ks[] = {st->ks[v].micro, st->ks[v].local, st->ks[v].conv_fwd,
                          st->ks[v].conv_bwd, st->ks[v].conv_wt};
        for (size_t i = 0; i < sizeof ks / sizeof *ks; i++)
            if (ks[i]) clReleaseKernel(ks[i]);
    }
    if (st->dot) clReleaseKernel(st->dot);
    if (st->reduce) clReleaseKernel(st->reduce);
    for (int i = 0; i < 3; i++)
        if (st->buf[i]) clReleaseMemObject(st->buf[i]);
    free(st);
    ctx->gemm = NULL;
}

static int clblast_sgemm(rc_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                         float alpha, rc_matrix a, rc_matrix b, float beta, rc_matrix c,
                         const char *what, rc_err *e) {
    CLBlastStatusCode s = CLBlastSgemm(
        CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a.buf, a.offset, a.ld,
        b.buf, b.offset, b.ld, beta, c.buf, c.offset, c.ld, &ctx->queue, NULL);
    if (s != CLBlastSuccess)
        return rc_err_clblast(e, "CLBlastSgemm", s, "%s, M=%zu N=%zu K=%zu, trans %c%c", what, m,
                              n, k, trans_a ? 'T' : 'N', trans_b ? 'T' : 'N');
    return 0;
}

/* ---- own implementation --------------------------------------------------------------------- */

#define WHERE "%s, M=%zu N=%zu K=%zu, trans %c%c"
#define WHERE_ARGS what, m, n, k, trans_a ? 'T' : 'N', trans_b ? 'T' : 'N'

/* Tile variant v's pack and micro kernels, and (with any variant) gemm_dot and gemm_reduce. */
static int kernels(rc_ctx *ctx, struct rc_gemm_state *st, int v, rc_err *e) {
    static const char *const pack[] = {"gemm_pack_a_x", "gemm_pack_a_y", "gemm_pack_b_x",
                                       "gemm_pack_b_y"};
    char opt[96];
    snprintf(opt, sizeof opt, "-DMR=%d -DNR=%d -DDM=%d -DDN=%d", st->p.mr[v], st->p.nr[v],
             st->p.dm, st->p.dn);
    if (!st->ks[v].micro) {
        for (int i = 0; i < 4; i++)
            if (rc_kernel_create(ctx, "gemm.cl", pack[i], opt, &st->ks[v].pack[i], e)) return -1;
        if (rc_kernel_create(ctx, "gemm.cl", "gemm_micro", opt, &st->ks[v].micro, e) ||
            rc_kernel_create(ctx, "gemm.cl", "gemm_micro_local", opt, &st->ks[v].local, e) ||
            rc_kernel_create(ctx, "gemm.cl", "conv_gemm_fwd", opt, &st->ks[v].conv_fwd, e) ||
            rc_kernel_create(ctx, "gemm.cl", "conv_gemm_bwd_data", opt, &st->ks[v].conv_bwd, e) ||
            rc_kernel_create(ctx, "gemm.cl", "conv_pack_wt", opt, &st->ks[v].conv_wt, e))
            return -1;
        const struct {
            cl_kernel k;
            size_t *items;
            const char *name;
        } q[] = {{st->ks[v].local, &st->ks[v].local_items, "gemm_micro_local"},
                 {st->ks[v].conv_fwd, &st->ks[v].conv_items, "conv_gemm_fwd"},
                 {st->ks[v].conv_bwd, &st->ks[v].conv_items, "conv_gemm_bwd_data"}};
        cl_int s = CL_SUCCESS;
        for (int i = 0; i < 3; i++) {
            size_t items = 0;
            s = clGetKernelWorkGroupInfo(q[i].k, ctx->dev.device, CL_KERNEL_WORK_GROUP_SIZE,
                                         sizeof items, &items, NULL);
            if (s != CL_SUCCESS)
                return rc_err_cl(e, "clGetKernelWorkGroupInfo", s, "%s", q[i].name);
            if (i < 2 || items < *q[i].items) *q[i].items = items;
        }
        cl_ulong bytes = 0;
        s = clGetDeviceInfo(ctx->dev.device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof bytes, &bytes, NULL);
        if (s != CL_SUCCESS) return rc_err_cl(e, "clGetDeviceInfo", s, "CL_DEVICE_LOCAL_MEM_SIZE");
        st->local_bytes = (size_t)bytes;
    }
    if (!st->reduce && (rc_kernel_create(ctx, "gemm.cl", "gemm_dot", opt, &st->dot, e) ||
                        rc_kernel_create(ctx, "gemm.cl", "gemm_reduce", opt, &st->reduce, e)))
        return -1;
    return 0;
}

static int scratch(rc_ctx *ctx, struct rc_gemm_state *st, int which, size_t floats, rc_err *e) {
    if (floats <= st->cap[which]) return 0;
    if (st->buf[which]) clReleaseMemObject(st->buf[which]);
    st->buf[which] = NULL;
    st->cap[which] = 0;
    if (rc_buffer_create(ctx, floats * sizeof(float), buf_name[which], &st->buf[which], e))
        return -1;
    st->cap[which] = floats;
    return 0;
}

/* Does a rows x cols matrix stored at m.offset with row stride m.ld fit in its buffer? */
static int check_matrix(char name, rc_matrix mat, size_t rows, size_t cols, rc_err *e,
                        const char *what, size_t m, size_t n, size_t k, int trans_a, int trans_b) {
    if (mat.ld < cols || mat.ld > INT_MAX)
        return rc_err_set(e, "rc_sgemm: leading dimension of %c is %zu, needs %zu to %d: " WHERE,
                          name, mat.ld, cols, INT_MAX, WHERE_ARGS);
    if (rows == 0 || cols == 0) return 0;
    size_t bytes = 0;
    cl_int s = clGetMemObjectInfo(mat.buf, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    if (s != CL_SUCCESS)
        return rc_err_cl(e, "clGetMemObjectInfo", s, "size of %c: " WHERE, name, WHERE_ARGS);
    size_t need = mat.offset + (rows - 1) * mat.ld + cols;
    if (need > bytes / sizeof(float))
        return rc_err_set(e, "rc_sgemm: %c needs %zu floats (offset %zu, %zu x %zu, ld %zu), its "
                             "buffer holds %zu: " WHERE,
                          name, need, mat.offset, rows, cols, mat.ld, bytes / sizeof(float),
                          WHERE_ARGS);
    return 0;
}

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* Largest local panel of gemm_micro_local (K x NR floats): it should stay in L2. */
static const size_t LOCAL_PANEL_BYTES = (size_t)256 << 10;

/* Split parts larger than this get longer parts instead (fewer of them). */
static const size_t PART_BYTES = (size_t)64 << 20;

/* The length of the parts K is split into for an mc x nc block (k itself: no split). Auto:
 * gemm_dot always splits a K longer than kc (its rows of A and B then stay in L1 between
 * neighbouring work-items; summing the parts costs little against 2 kc flops per element);
 * gemm_micro only a long K against a small output (otherwise too few work-items for the cores).
 * The parts (mc x nc floats each) are kept under PART_BYTES. */
static size_t part_len(const gemm_params *p, int dot, size_t mc, size_t nc, size_t k) {
    const size_t kc = (size_t)p->kc, whole = k ? k : 1;
    if (p->split == 0 || k <= kc) return whole;
    if (p->split == -1 && !dot && !(k >= 4 * kc && mc * nc <= k * 64)) return whole;
    const size_t most = PART_BYTES / (mc * nc * sizeof(float));
    if (most < 2) return whole;
    if (ceil_div(k, kc) <= most) return kc;
    return ceil_div(ceil_div(k, most), 16) * 16;
}

/* gemm_micro's work-item order. Rows of tiles first: each B panel is reused from L1 by the
 * tiles below one another, the whole packed A is read from cache for every column of tiles, and
 * C is written down its columns. Columns first: the A panel is reused from L1, the packed B of
 * the pass (bounded by panel2_bytes) from L2, and C is written along its rows. Measured on PoCL
 * (2-core AVX-512 Xeon): rows first wins while A is small or K long (convolution forward);
 * columns first wins for tall A with short K (input gradients, e.g. M 4608 K 512) and for row
 * strides of C that are multiples of 4 KiB (cache-set conflicts when writing down columns). */
static int cols_first(size_t mc, size_t k, size_t ldc) {
    if (mc * k * sizeof(float) > ((size_t)2 << 20) && k <= 1024) return 1;
    return mc >= 256 && ldc % 1024 == 0;
}

/* Runs `kern` (gemm_micro or gemm_dot: its `nlead` leading arguments, then K, kc, c, coff,
 * sstride, ldc, m, n, alpha, beta) over tm x tn tiles and the parts of K of length kc. With one
 * part it writes C; with several, each part goes to the scratch and gemm_reduce sums them. */
static int run_split(rc_ctx *ctx, struct rc_gemm_state *st, cl_kernel kern, const char *name,
                     const rc_arg *lead, int nlead, size_t tm, size_t tn, size_t kc_len, int K,
                     rc_matrix c, size_t m, size_t n, float alpha, float beta, rc_err *e) {
    const size_t ns = K > 0 ? ceil_div((size_t)K, kc_len) : 1;
    const int split = ns > 1, M = (int)m, N = (int)n, nsi = (int)ns, ldc = (int)c.ld;
    const int kc = (int)kc_len;
    if (split && scratch(ctx, st, BUF_PART, ns * m * n, e)) return -1;
    cl_mem out = split ? st->buf[BUF_PART] : c.buf;
    const cl_ulong coff = split ? 0 : c.offset, sstride = split ? (cl_ulong)m * n : 0;
    const int ldo = split ? N : ldc;
    const float one = 1.0f, zero = 0.0f;
    rc_arg args[24];
    int na = 0;
    for (int i = 0; i < nlead; i++) args[na++] = lead[i];
    args[na++] = RC_ARG(K);
    args[na++] = RC_ARG(kc);
    args[na++] = RC_ARG(out);
    args[na++] = RC_ARG(coff);
    args[na++] = RC_ARG(sstride);
    args[na++] = RC_ARG(ldo);
    args[na++] = RC_ARG(M);
    args[na++] = RC_ARG(N);
    args[na++] = split ? RC_ARG(one) : RC_ARG(alpha);
    args[na++] = split ? RC_ARG(zero) : RC_ARG(beta);
    size_t g[3] = {tm, tn, ns};
    if (rc_enqueue(ctx, kern, name, 3, g, NULL, na, args, e)) return -1;
    if (!split) return 0;
    size_t gr[2] = {n, m};
    const cl_ulong off_c = c.offset;
    return RC_ENQUEUE(ctx, st->reduce, "gemm_reduce", 2, gr, NULL, e, RC_ARG(st->buf[BUF_PART]), RC_ARG(nsi),
                  RC_ARG(c.buf), RC_ARG(off_c), RC_ARG(ldc), RC_ARG(M), RC_ARG(N), RC_ARG(alpha), RC_ARG(beta));
}

static int own_sgemm(rc_ctx *ctx, struct rc_gemm_state *st, int trans_a, int trans_b, size_t m,
                     size_t n, size_t k, float alpha, rc_matrix a, rc_matrix b, float beta,
                     rc_matrix c, const char *what, rc_err *e) {
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
        return rc_err_set(e, "rc_sgemm: sizes above %d are not supported: " WHERE, INT_MAX,
                          WHERE_ARGS);
    if (check_matrix('A', a, trans_a ? k : m, trans_a ? m : k, e, what, m, n, k, trans_a,
                     trans_b) ||
        check_matrix('B', b, trans_b ? n : k, trans_b ? k : n, e, what, m, n, k, trans_a,
                     trans_b) ||
        check_matrix('C', c, m, n, e, what, m, n, k, trans_a, trans_b))
        return -1;
    if (m == 0 || n == 0) return 0;
    const int K = (int)k, lda = (int)a.ld, ldb = (int)b.ld;
    const size_t kk = k ? k : 1;
    /* the work-item order of gemm_micro, which also picks its tile */
    const int jfirst = st->p.order >= 0 ? st->p.order : cols_first(m, k, c.ld);
    if (kernels(ctx, st, jfirst, e)) goto fail;

    if (!trans_a && trans_b && (st->p.dot == 1 || (st->p.dot < 0 && k >= 64))) {
        /* A x B^T: dot products straight from A and B, K split when long. */
        const size_t tm = ceil_div(m, (size_t)st->p.dm), tn = ceil_div(n, (size_t)st->p.dn);
        const size_t kc = part_len(&st->p, 1, m, n, k);
        const cl_ulong aoff = a.offset, boff = b.offset;
        const rc_arg lead[] = {RC_ARG(a.buf), RC_ARG(aoff), RC_ARG(lda), RC_ARG(b.buf), RC_ARG(boff), RC_ARG(ldb)};
        if (run_split(ctx, st, st->dot, "gemm_dot", lead, 6, tm, tn, kc, K, c, m, n, alpha, beta,
                      e))
            goto fail;
        return 0;
    }

    /* Panels: op(A) in passes over M when huge, op(B) in passes over N of bounded size. */
    const size_t mr = (size_t)st->p.mr[jfirst], nr = (size_t)st->p.nr[jfirst];
    size_t mc_max = ceil_div(m, mr) * mr;
    if (mc_max * kk * sizeof(float) > st->p.a_bytes)
        mc_max = (st->p.a_bytes / (kk * sizeof(float)) / mr) * mr;
    if (mc_max < mr) mc_max = mr;
    /* Rows first with A in L2: large passes (each pass costs two launches, 20-40 us on PoCL).
     * Otherwise small ones, so that the packed B stays in cache while it is used. */
    const size_t panel = !jfirst && mc_max * kk * sizeof(float) <= ((size_t)1 << 20)
                             ? st->p.panel_bytes
                             : st->p.panel2_bytes;
    size_t nc_max = (panel / (kk * sizeof(float)) / nr) * nr;
    if (nc_max < nr) nc_max = nr;
    if (nc_max > ceil_div(n, nr) * nr) nc_max = ceil_div(n, nr) * nr;
    const size_t kb = ceil_div(k, 16), tm_all = ceil_div(m, mr), tn_all = ceil_div(n, nr);
    /* op(B) not transposed, one pass over M, small A, no split: the work-groups copy their
     * column of B into local memory themselves (one group = one column of tiles). */
    const size_t panel_local = k * nr * sizeof(float);
    if (!trans_b && !jfirst && k > 0 && mc_max >= m && st->p.local != 0 &&
        (st->p.local == 1 || m * k * sizeof(float) <= ((size_t)1 << 20)) &&
        panel_local <= LOCAL_PANEL_BYTES && panel_local <= st->local_bytes &&
        tm_all <= st->ks[jfirst].local_items && part_len(&st->p, 0, m, n, k) >= k) {
        size_t ga[2] = {tm_all, kb}, gy[2] = {kb, tm_all};
        const int rows_a = (int)m, tm = (int)tm_all, M = (int)m, N = (int)n, ldc = (int)c.ld;
        const cl_ulong off_a = a.offset, off_b = b.offset, off_c = c.offset;
        if (scratch(ctx, st, BUF_A, tm_all * mr * k, e) ||
            RC_ENQUEUE(ctx, st->ks[jfirst].pack[trans_a ? 0 : 1],
                   trans_a ? "gemm_pack_a_x" : "gemm_pack_a_y", 2, trans_a ? ga : gy, NULL, e, RC_ARG(a.buf),
                   RC_ARG(off_a), RC_ARG(lda), RC_ARG(rows_a), RC_ARG(K), RC_ARG(st->buf[BUF_A])))
            goto fail;
        size_t g[2] = {tm_all, tn_all}, l[2] = {tm_all, 1};
        const rc_arg args[] = {RC_ARG(st->buf[BUF_A]), RC_ARG(b.buf), RC_ARG(off_b), RC_ARG(ldb),  RC_ARG(K),
                             RC_ARG(tm),             RC_ARG(c.buf), RC_ARG(off_c), RC_ARG(ldc),  RC_ARG(M),
                             RC_ARG(N),              RC_ARG(alpha), RC_ARG(beta),  {panel_local, NULL}};
        if (rc_enqueue(ctx, st->ks[jfirst].local, "gemm_micro_local", 2, g, l,
                         (int)(sizeof args / sizeof *args), args, e))
            goto fail;
        return 0;
    }
    if (scratch(ctx, st, BUF_A, mc_max * kk, e) || scratch(ctx, st, BUF_B, nc_max * kk, e))
        goto fail;
    for (size_t m0 = 0; m0 < m; m0 += mc_max) {
        const size_t mc = m - m0 < mc_max ? m - m0 : mc_max, tm = ceil_div(mc, mr);
        const int rows_a = (int)mc;
        /* op(A)(i, p) = A[i][p] (k contiguous: _y) or A[p][i] (i contiguous: _x) */
        const cl_ulong off_a = a.offset + (trans_a ? m0 : m0 * a.ld);
        size_t gx[2] = {tm, kb}, gy[2] = {kb, tm};
        if (RC_ENQUEUE(ctx, st->ks[jfirst].pack[trans_a ? 0 : 1],
                   trans_a ? "gemm_pack_a_x" : "gemm_pack_a_y", 2, trans_a ? gx : gy, NULL, e, RC_ARG(a.buf),
                   RC_ARG(off_a), RC_ARG(lda), RC_ARG(rows_a), RC_ARG(K), RC_ARG(st->buf[BUF_A])))
            goto fail;
        for (size_t n0 = 0; n0 < n; n0 += nc_max) {
            const size_t nc = n - n0 < nc_max ? n - n0 : nc_max, tn = ceil_div(nc, nr);
            const int rows_b = (int)nc;
            /* op(B)(p, j) = B[p][j] (j contiguous: _x) or B[j][p] (k contiguous: _y) */
            const cl_ulong off_b = b.offset + (trans_b ? n0 * b.ld : n0);
            size_t hx[2] = {tn, kb}, hy[2] = {kb, tn};
            if (RC_ENQUEUE(ctx, st->ks[jfirst].pack[trans_b ? 3 : 2],
                       trans_b ? "gemm_pack_b_y" : "gemm_pack_b_x", 2, trans_b ? hy : hx, NULL, e,
                       RC_ARG(b.buf), RC_ARG(off_b), RC_ARG(ldb), RC_ARG(rows_b), RC_ARG(K), RC_ARG(st->buf[BUF_B])))
                goto fail;
            rc_matrix cs = {c.buf, c.offset + m0 * c.ld + n0, c.ld};
            const size_t kc = part_len(&st->p, 0, mc, nc, k);
            const rc_arg lead[] = {RC_ARG(st->buf[BUF_A]), RC_ARG(st->buf[BUF_B]), RC_ARG(jfirst)};
            if (run_split(ctx, st, st->ks[jfirst].micro, "gemm_micro", lead, 3, jfirst ? tn : tm,
                          jfirst ? tm : tn, kc, K, cs, mc, nc, alpha, beta, e))
                goto fail;
        }
    }
    return 0;
fail:
    return rc_err_prefix(e, "rc_sgemm (own kernels), " WHERE ": ", WHERE_ARGS);
}

/* ---- what the implicit-GEMM convolutions borrow --------------------------------------------- */

/* Their tile variant: gemm_micro_local's (MR x 32); the data gradient's tile is 9 taps x NR (18
 * float16 accumulators, 8-10% faster than NR 16 on PoCL/AVX-512). */
enum { CONV_V = 0 };

int rc_gemm_conv_kit_get(rc_ctx *ctx, rc_gemm_conv_kit *kit, rc_err *e) {
    struct rc_gemm_state *st = state(ctx, e);
    if (!st) return -1;
    if (st->impl != IMPL_OWN) return 0;
    if (kernels(ctx, st, CONV_V, e)) return -1;
    *kit = (rc_gemm_conv_kit){.pack_a_y = st->ks[CONV_V].pack[1],
                              .conv_fwd = st->ks[CONV_V].conv_fwd,
                              .conv_bwd = st->ks[CONV_V].conv_bwd,
                              .conv_wt = st->ks[CONV_V].conv_wt,
                              .mr = (size_t)st->p.mr[CONV_V],
                              .nr = (size_t)st->p.nr[CONV_V],
                              .conv_items = st->ks[CONV_V].conv_items,
                              .local_bytes = st->local_bytes,
                              .panel_bytes = LOCAL_PANEL_BYTES};
    return 1;
}

int rc_gemm_scratch_a(rc_ctx *ctx, size_t floats, cl_mem *out, rc_err *e) {
    struct rc_gemm_state *st = state(ctx, e);
    if (!st || scratch(ctx, st, BUF_A, floats, e)) return -1;
    *out = st->buf[BUF_A];
    return 0;
}

int rc_sgemm_clblast(rc_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                     float alpha, rc_matrix a, rc_matrix b, float beta, rc_matrix c,
                     const char *what, rc_err *e) {
    return clblast_sgemm(ctx, trans_a, trans_b, m, n, k, alpha, a, b, beta, c, what, e);
}

int rc_sgemm(rc_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
             rc_matrix a, rc_matrix b, float beta, rc_matrix c, const char *what, rc_err *e) {
    struct rc_gemm_state *st = state(ctx, e);
    if (!st) return -1;
    double t0 = ctx->profile ? rc_now_s() : 0;
    int r = st->impl == IMPL_CLBLAST
                ? clblast_sgemm(ctx, trans_a, trans_b, m, n, k, alpha, a, b, beta, c, what, e)
                : own_sgemm(ctx, st, trans_a, trans_b, m, n, k, alpha, a, b, beta, c, what, e);
    if (r == 0 && ctx->profile) {
        char name[64];
        snprintf(name, sizeof name, "GEMM %s", what);
        if (rc_ctx_finish(ctx, e)) return -1;
        rc_profile_add(ctx, name, rc_now_s() - t0);
    }
    return r;
}
