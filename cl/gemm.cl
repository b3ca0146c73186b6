/* SGEMM for CPU devices (PoCL): C = alpha * op(A) * op(B) + beta * C, row-major. Launched by
 * src/runtime/gemm.c, which picks the kernels per shape:
 *
 *   gemm_pack_{a,b}_{x,y}  copy op(A) and op(B) into panels: for each block of MR rows of op(A)
 *                  (NR columns of op(B)) every k holds its MR (NR) values contiguously; rows or
 *                  columns past the edge are zero. The transposes are handled here: _x reads a
 *                  source whose panel index is contiguous, _y one whose k is contiguous.
 *   gemm_micro     one work-item computes an MR x NR tile of C as MR (x NR/16) float16
 *                  accumulators over a range of k, reading both panels sequentially.
 *   gemm_micro_local  the same with op(B) copied by the work-group into local memory instead
 *                  of packed in a separate pass (op(B) not transposed, K not split).
 *   gemm_dot       for A x B^T (k contiguous in both operands, e.g. weight gradients): one
 *                  work-item computes a DM x DN tile as DM x DN float16 partial dot products read
 *                  straight from A and B, summed across lanes at the end. No packing.
 *   gemm_reduce    when K is split across work-items, gemm_micro and gemm_dot write one
 *                  partial product per part; this sums them in a fixed order (results are
 *                  identical from run to run) and writes alpha * sum + beta * C.
 *   conv_gemm_fwd, conv_gemm_bwd_data, conv_pack_wt
 *                  convolution forward and data gradient without an im2col matrix (the eval-mode
 *                  fused layers of src/nn/model.c), launched by src/nn/layers/conv_implicit.c
 *                  and described where they are defined.
 *
 * MR, NR (16 or 32), DM and DN are build options passed by src/runtime/gemm.c. Every multiply-add is an
 * explicit fma(), so results do not depend on the compiler's contraction choices. */

#ifndef MR
#define MR 8
#endif
#ifndef NR
#define NR 16
#endif
#if NR != 16 && NR != 32
#error "NR must be 16 or 32"
#endif
#if MR < 1 || MR > 16
#error "MR must be 1..16"
#endif
#ifndef DM
#define DM 4
#endif
#ifndef DN
#define DN 4
#endif
#if DM < 1 || DM > 8 || DN < 1 || DN > 8
#error "DM and DN must be 1..8"
#endif
/* k per pack work-item */
#define KB 16

#define R1(X) X(0)
#define R2(X) R1(X) X(1)
#define R3(X) R2(X) X(2)
#define R4(X) R3(X) X(3)
#define R5(X) R4(X) X(4)
#define R6(X) R5(X) X(5)
#define R7(X) R6(X) X(6)
#define R8(X) R7(X) X(7)
#define R9(X) R8(X) X(8)
#define R10(X) R9(X) X(9)
#define R11(X) R10(X) X(10)
#define R12(X) R11(X) X(11)
#define R13(X) R12(X) X(12)
#define R14(X) R13(X) X(13)
#define R15(X) R14(X) X(14)
#define R16(X) R15(X) X(15)
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define ROWS CAT(R, MR)

/* Packing. Panel `blk` of width W holds dst[(blk * K + p) * W + r] = src(blk * W + r, p) for
 * r < W, p < K; src(i, p) is 0 for i >= rows. Each work-item copies a KB x W block.
 *   _x: src(i, p) = src[off + i + p * cs]: work-item (blk, pb), reads W contiguous values per p.
 *   _y: src(i, p) = src[off + i * rs + p]: work-item (pb, blk), reads KB contiguous values per i.
 * Neighbouring work-items read neighbouring source memory. */
#define PACK_KERNELS(X, Y, W)                                                                     \
    __kernel void X(__global const float *src, const ulong off, const int cs, const int rows,     \
                    const int K, __global float *dst) {                                           \
        const int blk = get_global_id(0), pb = get_global_id(1);                                 \
        const int i0 = blk * W, p0 = pb * KB, pn = min(KB, K - p0);                               \
        if (pn <= 0) return;                                                                      \
        __global const float *s = src + off + (size_t)p0 * cs + i0;                               \
        __global float *d = dst + ((size_t)blk * K + p0) * W;                                     \
        if (i0 + W <= rows) {                                                                     \
            for (int q = 0; q < pn; q++, s += cs, d += W)                                         \
                for (int r = 0; r < W; r++) d[r] = s[r];                                          \
        } else {                                                                                  \
            const int rn = rows - i0;                                                             \
            for (int q = 0; q < pn; q++, s += cs, d += W)                                         \
                for (int r = 0; r < W; r++) d[r] = r < rn ? s[r] : 0.0f;                          \
        }                                                                                         \
    }                                                                                             \
    __kernel void Y(__global const float *src, const ulong off, const int rs, const int rows,     \
                    const int K, __global float *dst) {                                           \
        const int pb = get_global_id(0), blk = get_global_id(1);                                  \
        const int i0 = blk * W, p0 = pb * KB, pn = min(KB, K - p0);                               \
        if (pn <= 0) return;                                                                      \
        __global const float *s = src + off + (size_t)i0 * rs + p0;                               \
        __global float *d = dst + ((size_t)blk * K + p0) * W;                                     \
        const int rn = min(W, rows - i0);                                                         \
        if (pn == KB) {                                                                           \
            for (int r = 0; r < rn; r++) {                                                        \
                const float16 v = vload16(0, s + (size_t)r * rs);                                 \
                d[r + 0 * W] = v.s0, d[r + 1 * W] = v.s1, d[r + 2 * W] = v.s2;                    \
                d[r + 3 * W] = v.s3, d[r + 4 * W] = v.s4, d[r + 5 * W] = v.s5;                    \
                d[r + 6 * W] = v.s6, d[r + 7 * W] = v.s7, d[r + 8 * W] = v.s8;                    \
                d[r + 9 * W] = v.s9, d[r + 10 * W] = v.sa, d[r + 11 * W] = v.sb;                  \
                d[r + 12 * W] = v.sc, d[r + 13 * W] = v.sd, d[r + 14 * W] = v.se;                 \
                d[r + 15 * W] = v.sf;                                                             \
            }                                                                                     \
        } else {                                                                                  \
            for (int r = 0; r < rn; r++)                                                          \
                for (int q = 0; q < pn; q++) d[q * W + r] = s[(size_t)r * rs + q];                \
        }                                                                                         \
        for (int r = max(rn, 0); r < W; r++)                                                      \
            for (int q = 0; q < pn; q++) d[q * W + r] = 0.0f;                                     \
    }

PACK_KERNELS(gemm_pack_a_x, gemm_pack_a_y, MR)
PACK_KERNELS(gemm_pack_b_x, gemm_pack_b_y, NR)

/* The register tile of gemm_micro and gemm_micro_local: MR rows of float16 accumulators (two per
 * row when NR is 32). TILE_LOOP runs k over [k0, k1) from A panel pa (MR values per k) and B panel
 * pb (NR values per k, as float16 pointer); TILE_STORE writes rows r <= last, columns < nj of the
 * tile to cc (row stride ldc) as alpha * tile + beta * C, not reading C when beta is 0. */
#if NR == 16
#define DECL(r) float16 c##r = (float16)(0.0f);
#define STEP(r) c##r = fma((float16)(pa[r]), pb[0], c##r);
#define OUT(r)                                                                                    \
    if (r <= last) {                                                                              \
        __global float *q = cc + (size_t)r * ldc;                                                 \
        float16 v = alpha * c##r;                                                                 \
        if (beta != 0.0f) v = fma((float16)(beta), vload16(0, q), v);                             \
        vstore16(v, 0, q);                                                                        \
    }
#define TOTMP(r) vstore16(c##r, 0, t);
#else
#define DECL(r) float16 c##r = (float16)(0.0f), d##r = (float16)(0.0f);
#define STEP(r)                                                                                   \
    {                                                                                             \
        const float16 a_ = (float16)(pa[r]);                                                      \
        c##r = fma(a_, pb[0], c##r);                                                              \
        d##r = fma(a_, pb[1], d##r);                                                              \
    }
#define OUT(r)                                                                                    \
    if (r <= last) {                                                                              \
        __global float *q = cc + (size_t)r * ldc;                                                 \
        float16 v = alpha * c##r, u = alpha * d##r;                                               \
        if (beta != 0.0f) {                                                                       \
            v = fma((float16)(beta), vload16(0, q), v);                                           \
            u = fma((float16)(beta), vload16(1, q), u);                                           \
        }                                                                                         \
        vstore16(v, 0, q);                                                                        \
        vstore16(u, 1, q);                                                                        \
    }
#define TOTMP(r) vstore16(c##r, 0, t), vstore16(d##r, 1, t);
#endif
#define EDGE(r)                                                                                   \
    if (r <= last) {                                                                              \
        __global float *q = cc + (size_t)r * ldc;                                                 \
        TOTMP(r)                                                                                  \
        for (int j = 0; j < nj; j++)                                                              \
            q[j] = beta != 0.0f ? fma(beta, q[j], alpha * t[j]) : alpha * t[j];                   \
    }
#define TILE_LOOP(k0, k1)                                                                         \
    for (int p_ = k0; p_ < k1; p_++) {                                                            \
        ROWS(STEP)                                                                                \
        pb += NR / 16;                                                                            \
        pa += MR;                                                                                 \
    }
#define TILE_STORE                                                                                \
    if (nj >= NR) {                                                                               \
        ROWS(OUT)                                                                                 \
    } else {                                                                                      \
        float t[NR];                                                                              \
        ROWS(EDGE)                                                                                \
    }

/* Tile (ib, jb) of C over k in [s * kc, min(K, (s + 1) * kc)), from panels ap (MR rows) and bp
 * (NR columns), both K deep. Part s is written to c + coff + s * sstride (partial products for
 * gemm_reduce, alpha 1, beta 0) or, unsplit, to C itself. Work-item (ib, jb, s), or (jb, ib, s)
 * when jfirst is set: neighbouring work-items then share the A panel instead of the B panel and
 * write neighbouring memory of C. */
__kernel void gemm_micro(__global const float *ap, __global const float *bp, const int jfirst,
                         const int K, const int kc, __global float *c, const ulong coff,
                         const ulong sstride, const int ldc, const int m, const int n,
                         const float alpha, const float beta) {
    const int ib = get_global_id(jfirst ? 1 : 0), jb = get_global_id(jfirst ? 0 : 1);
    const int s = get_global_id(2);
    const int k0 = s * kc, k1 = min(K, k0 + kc);
    __global const float *pa = ap + ((size_t)ib * K + k0) * MR;
    __global const float16 *pb = (__global const float16 *)(bp + ((size_t)jb * K + k0) * NR);
    ROWS(DECL)
    TILE_LOOP(k0, k1)
    const int i0 = ib * MR, j0 = jb * NR, last = m - 1 - i0, nj = n - j0;
    __global float *cc = c + coff + s * sstride + (size_t)i0 * ldc + j0;
    TILE_STORE
}

/* gemm_micro for op(B)(p, j) = b[boff + p * ldb + j] read in place: a work-group is one column
 * of tiles (jb = group 1) and first copies its K x NR block of B into the local panel (zeros past
 * column n), so that packing costs no pass through memory. K is not split. */
__kernel void gemm_micro_local(__global const float *ap, __global const float *b,
                               const ulong boff, const int ldb, const int K, const int tm,
                               __global float *c, const ulong coff, const int ldc, const int m,
                               const int n, const float alpha, const float beta,
                               __local float16 *panel) {
    const int jb = get_group_id(1), lid = get_local_id(0), lsz = get_local_size(0);
    const int j0 = jb * NR, nj = n - j0;
    __global const float *src = b + boff + j0;
    if (nj >= NR) {
        for (int p = lid; p < K; p += lsz) {
            panel[p * (NR / 16)] = vload16(0, src + (size_t)p * ldb);
#if NR == 32
            panel[p * 2 + 1] = vload16(1, src + (size_t)p * ldb);
#endif
        }
    } else {
        __local float *pf = (__local float *)panel;
        for (int p = lid; p < K; p += lsz)
            for (int j = 0; j < NR; j++) pf[p * NR + j] = j < nj ? src[(size_t)p * ldb + j] : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const int ib = get_global_id(0);
    if (ib >= tm) return;
    __global const float *pa = ap + (size_t)ib * K * MR;
    __local const float16 *pb = panel;
    ROWS(DECL)
    TILE_LOOP(0, K)
    const int i0 = ib * MR, last = m - 1 - i0;
    __global float *cc = c + coff + (size_t)i0 * ldc + j0;
    TILE_STORE
}

/* ---- Convolution as an implicit GEMM -------------------------------------------------------
 * gemm_micro_local with the local panel gathered from an activation tensor instead of copied
 * from a matrix: no column matrix passes through memory, and each tile is stored straight to its
 * place in the output tensor with a per-row epilogue. A work-group is `cb` blocks of NR output
 * positions (columns) and the ceil(m / MR) row tiles over them (local size = that count; larger
 * work-groups, fewer of them: PoCL spends 1-2 us per work-group). Each column's gather offsets
 * (one per kernel tap: x[n][0][h][w], -1 in the padding) and store offset are computed once into
 * the local table `tab`, so the gather is one table read, one load and one store per element,
 * with no division. Offsets are ints: src/nn/layers/conv_implicit.c checks that tensors have
 * fewer than 2^31 elements. */

/* Forward: out(oc, q) = sum over k = (c, i, j) of W[oc][k] * x[n][c][oh * s - pad + i][ow * s -
 * pad + j] for output position q = (n, oh, ow), ap = W packed by gemm_pack_a_y. Stored at
 * y[n * ys_n + oc * ys_c + oh * OW + ow]; with bn_relu as max(v * scale + shift, 0), the eval-mode
 * batch norm (running statistics) and ReLU that follow the convolution. A block of NR columns
 * inside one image is stored as vectors. */
#if NR == 16
#define FWD_VEC(r, f) vstore16(f(c##r), 0, q);
#else
#define FWD_VEC(r, f) vstore16(f(c##r), 0, q), vstore16(f(d##r), 1, q);
#endif
#define BN_RELU(v) fmax((v) * sc + sh, 0.0f)
#define SAME(v) (v)
#define FWD_OUT(r)                                                                                \
    if (r <= last) {                                                                              \
        const int o = i0 + r;                                                                     \
        if (bn_relu) {                                                                            \
            const float sc = gamma[o] / sqrt(var[o] + eps), sh = beta[o] - mean[o] * sc;          \
            if (run) {                                                                            \
                __global float *q = y + o * ys_c + yo[0];                                         \
                FWD_VEC(r, BN_RELU)                                                               \
            } else {                                                                              \
                __global float *q = y + o * ys_c;                                                 \
                TOTMP(r)                                                                          \
                for (int j = 0; j < nj; j++) q[yo[j]] = BN_RELU(t[j]);                            \
            }                                                                                     \
        } else if (run) {                                                                         \
            __global float *q = y + o * ys_c + yo[0];                                             \
            FWD_VEC(r, SAME)                                                                      \
        } else {                                                                                  \
            __global float *q = y + o * ys_c;                                                     \
            TOTMP(r)                                                                              \
            for (int j = 0; j < nj; j++) q[yo[j]] = t[j];                                         \
        }                                                                                         \
    }
__kernel void conv_gemm_fwd(__global const float *ap, const int m, __global const float *x,
                            const int C, const int H, const int W, const int KH, const int KW,
                            const int stride, const int pad, const int OH, const int OW,
                            const int np, const int cb, __global float *y, const int ys_n,
                            const int ys_c, const int bn_relu, __global const float *gamma,
                            __global const float *beta, __global const float *mean,
                            __global const float *var, const float eps, __local float *panel,
                            __local int *tab) {
    const int lid = get_local_id(0), lsz = get_local_size(0), cols = cb * NR;
    const int j0 = get_group_id(1) * cols, P = OH * OW, HW = H * W, taps = KH * KW;
    const int K = C * taps;
    __local int *yo_all = tab + taps * cols; /* store offset of each column */
    for (int j = lid; j < cols; j += lsz) {
        const int q = j0 + j, n = q / P, p = q - n * P, oh = p / OW;
        const int hb = oh * stride - pad, wb = (p - oh * OW) * stride - pad;
        yo_all[j] = n * ys_n + p;
        for (int i = 0; i < KH; i++)
            for (int jj = 0; jj < KW; jj++) {
                const int h = hb + i, w = wb + jj;
                tab[(i * KW + jj) * cols + j] =
                    q < np && (uint)h < (uint)H && (uint)w < (uint)W ? n * C * HW + h * W + w
                                                                     : -1;
            }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* the panel of block b: panel[(b * K + k) * NR + j] for k = (c, tap) */
    for (int k = lid; k < K; k += lsz) {
        const int c = k / taps;
        __global const float *xc = x + c * HW;
        __local const int *o = tab + (k - c * taps) * cols;
        for (int b = 0; b < cb; b++, o += NR) {
            __local float *row = panel + ((size_t)b * K + k) * NR;
            for (int j = 0; j < NR; j++) row[j] = o[j] >= 0 ? xc[o[j]] : 0.0f;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const int i0 = lid * MR, last = m - 1 - i0;
    if (last < 0) return;
    float t[NR];
    for (int b = 0; b < cb; b++) {
        const int nj = min(NR, np - j0 - b * NR);
        if (nj <= 0) break;
        __local const int *yo = yo_all + b * NR;
        /* a whole block inside one image: its columns are contiguous in y */
        const int run = nj == NR && yo[NR - 1] - yo[0] == NR - 1;
        __global const float *pa = ap + (size_t)lid * K * MR;
        __local const float16 *pb = (__local const float16 *)(panel + (size_t)b * K * NR);
        ROWS(DECL)
        TILE_LOOP(0, K)
        ROWS(FWD_OUT)
    }
}

/* Data gradient of a 3x3 convolution: dx[n][c][h][w] = sum over oc, i, j of W[oc][c][i][j] *
 * dz[n][oc][oh][ow] with h = oh * s - pad + i, w = ow * s - pad + j. A work-group is one image,
 * a work-item one input channel c: each work-item owns its dx plane and sums into it in a fixed
 * order (deterministic, no atomics), and nothing is shared, so there is no barrier (PoCL keeps
 * a loop's accumulators in memory when the loop contains one). The plane lives in local memory
 * split by phase: padded position (h + pad, w + pad) is element ((h + pad) / s) * WV +
 * (w + pad) / s of sub-plane ((h + pad) % s, (w + pad) % s), WV = OW + 2 / s. dz comes in the
 * padded layout of rc_conv_implicit_dz_layout: rows of WV (columns ow >= OW zero) and planes of
 * zs_c >= OH * WV rounded up to NR (zero tail). So for every tap (i, j) a block of NR consecutive
 * padded positions is one vector load per oc and lands on NR consecutive elements of one
 * sub-plane: the tile of 9 taps x NR positions over K = OC is added to the plane as 9 (NR / 16)
 * vectors, with no gather and no col2im. Then the plane is written to dx[n * os_n + c * os_c +
 * h * orow + w] (with opad: zeros in columns W..orow-1 and after row H up to os_c), added when
 * acc is set; with `masked` each value is first multiplied by (mask[n][c][h][w] > 0 ?
 * gamma[c] / sqrt(var[c] + eps) : 0): the backward of the eval-mode batch norm and ReLU whose
 * output (`mask`, NCHW) the convolution read. ap = W as [C][OC][9] (conv_pack_wt);
 * `plane_stride` floats per work-item hold its s * s sub-planes of (OH + 2 / s) x WV and the
 * last block's overhang. */
#define T9(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8)
#if NR == 16
#define BDECL(t) float16 a##t = (float16)(0.0f);
#define BLOAD const float16 b0_ = vload16(0, pb);
#define BSTEP(t) a##t = fma((float16)(pa[t]), b0_, a##t);
#define BADD(t)                                                                                   \
    {                                                                                             \
        __local float *d_ = pv + toff[t];                                                         \
        vstore16(vload16(0, d_) + a##t, 0, d_);                                                   \
    }
#else
#define BDECL(t) float16 a##t = (float16)(0.0f), b##t = (float16)(0.0f);
#define BLOAD const float16 b0_ = vload16(0, pb), b1_ = vload16(1, pb);
#define BSTEP(t)                                                                                  \
    {                                                                                             \
        const float16 w_ = (float16)(pa[t]);                                                      \
        a##t = fma(w_, b0_, a##t);                                                                \
        b##t = fma(w_, b1_, b##t);                                                                \
    }
#define BADD(t)                                                                                   \
    {                                                                                             \
        __local float *d_ = pv + toff[t];                                                         \
        vstore16(vload16(0, d_) + a##t, 0, d_);                                                   \
        vstore16(vload16(1, d_) + b##t, 1, d_);                                                   \
    }
#endif
__kernel void conv_gemm_bwd_data(__global const float *ap, __global const float *dz,
                                 const int OC, const int OH, const int OW, const int zs_n,
                                 const int zs_c, const int C, const int H, const int W,
                                 const int s, const int pad, __global float *dx, const int os_n,
                                 const int os_c, const int orow, const int opad, const int acc,
                                 const int masked, __global const float *mask,
                                 __global const float *gamma, __global const float *var,
                                 const float eps, const int plane_stride,
                                 __local float *planes) {
    const int n = get_group_id(1), c = get_local_id(0);
    const int WV = OW + 2 / s, S1 = (OH + 2 / s) * WV, PV = OH * WV;
    __local float *pl = planes + (size_t)c * plane_stride;
    /* Remainders here and below as x - (x / y) * y: a % beside the / of the same operands makes
     * LLVM emit a freeze, which Oclgrind 21.10 cannot run (tests/oclgrind.sh). */
    int toff[9];
    for (int t = 0; t < 9; t++) {
        const int i = t / 3, j = t - 3 * i, is = i / s, js = j / s;
        toff[t] = ((i - is * s) * s + j - js * s) * S1 + is * WV + js;
    }
    for (int q = 0; q < plane_stride; q += 16) vstore16((float16)(0.0f), 0, pl + q);
    __global const float *zn = dz + (size_t)n * zs_n;
    for (int v0 = 0; v0 < PV; v0 += NR) {
        __global const float *pa = ap + (size_t)c * OC * 9, *pb = zn + v0;
        T9(BDECL)
        for (int k = 0; k < OC; k++, pa += 9, pb += zs_c) {
            BLOAD
            T9(BSTEP)
        }
        __local float *pv = pl + v0;
        T9(BADD)
    }
    /* Every input position lies inside the sub-planes (a 3x3 kernel reaches the whole input).
     * Whole vectors of 8 columns: padded column w + pad = 2 sc + ph comes from sub-plane ph at
     * sc (stride 2: two half vectors interleaved), then the rest one by one. */
    const float k = masked ? gamma[c] / sqrt(var[c] + eps) : 1.0f;
    const uint8 mix = (uint8)(0, 4, 1, 5, 2, 6, 3, 7);
    const int W8 = W & ~7;
    __global const float *mk = mask + ((size_t)n * C + c) * H * W;
    __global float *out = dx + (size_t)n * os_n + (size_t)c * os_c;
    for (int h = 0; h < H; h++) {
        const int hp = h + pad, sr = hp / s;
        __local const float *src = pl + (hp - sr * s) * s * S1 + sr * WV;
        __global float *o = out + h * orow;
        __global const float *mr = mk + h * W;
        for (int w = 0; w < W8; w += 8) {
            float8 v;
            if (s == 1) {
                v = vload8(0, src + w + pad);
            } else {
                const int b = (w + pad) / 2;
                v = pad & 1 ? shuffle2(vload4(0, src + S1 + b), vload4(0, src + b + 1), mix)
                            : shuffle2(vload4(0, src + b), vload4(0, src + S1 + b), mix);
            }
            if (masked) v = select((float8)(0.0f), v * k, isgreater(vload8(0, mr + w), 0.0f));
            if (acc) v += vload8(0, o + w);
            vstore8(v, 0, o + w);
        }
        for (int w = W8, sc = (W8 + pad) / s, ph = W8 + pad - sc * s; w < W; w++) {
            float v = src[ph * S1 + sc];
            if (masked) v = mr[w] > 0.0f ? v * k : 0.0f;
            o[w] = acc ? o[w] + v : v;
            if (++ph == s) ph = 0, sc++;
        }
        if (opad)
            for (int w = W; w < orow; w++) o[w] = 0.0f;
    }
    if (opad)
        for (int q = H * orow; q < os_c; q++) out[q] = 0.0f;
}

/* W[OC][C][3][3] as [C][OC][9] for conv_gemm_bwd_data; work-item (c, oc). */
__kernel void conv_pack_wt(__global const float *w, const int OC, const int C,
                           __global float *ap) {
    const int c = get_global_id(0), oc = get_global_id(1);
    if (c >= C || oc >= OC) return;
    __global const float *s = w + ((size_t)oc * C + c) * 9;
    __global float *d = ap + ((size_t)c * OC + oc) * 9;
    for (int t = 0; t < 9; t++) d[t] = s[t];
}

/* The lanes of v summed in a fixed tree. Written so that Oclgrind 21.10 can check it
 * (tests/oclgrind.sh): its uninitialised-value tracking takes a shuffled lane 11 for an undefined
 * one (so v.hi is shuffle(), a call it handles) and reads an undefined lane from outside the
 * vector (so the last add, which LLVM would make a shuffle with one, is a dot product with ones:
 * the same sum, its products exact). */
static float hsum16(const float16 v) {
    const float8 h = v.lo + shuffle(v, (uint8)(8, 9, 10, 11, 12, 13, 14, 15));
    const float4 q = h.lo + h.hi;
    const float2 d = q.lo + q.hi;
    return dot(d, (float2)(1.0f));
}

/* C = A x B^T with A(i, p) = a[aoff + i * lda + p], B(j, p) = b[boff + j * ldb + p]: tile
 * (ib, jb) of DM x DN over k in [s * kc, min(K, (s + 1) * kc)), written like gemm_micro's.
 * Rows of A or B past the edge are read clamped and not stored. */
#define S1(X, r) X(r, 0)
#define S2(X, r) S1(X, r) X(r, 1)
#define S3(X, r) S2(X, r) X(r, 2)
#define S4(X, r) S3(X, r) X(r, 3)
#define S5(X, r) S4(X, r) X(r, 4)
#define S6(X, r) S5(X, r) X(r, 5)
#define S7(X, r) S6(X, r) X(r, 6)
#define S8(X, r) S7(X, r) X(r, 7)
#define DROWS CAT(R, DM)
#define DCOLS CAT(R, DN)
#define DPAIRS(X, r) CAT(S, DN)(X, r)

__kernel void gemm_dot(__global const float *a, const ulong aoff, const int lda,
                       __global const float *b, const ulong boff, const int ldb, const int K,
                       const int kc, __global float *c, const ulong coff, const ulong sstride,
                       const int ldc, const int m, const int n, const float alpha,
                       const float beta) {
    const int ib = get_global_id(0), jb = get_global_id(1), s = get_global_id(2);
    const int k0 = s * kc, k1 = min(K, k0 + kc);
    const int i0 = ib * DM, j0 = jb * DN;
#define PA(r) __global const float *pa##r = a + aoff + (size_t)min(i0 + r, m - 1) * lda + k0;
#define PB(q) __global const float *pb##q = b + boff + (size_t)min(j0 + q, n - 1) * ldb + k0;
#define ZERO(r, q) float16 s##r##_##q = (float16)(0.0f);
#define ZROW(r) DPAIRS(ZERO, r)
    DROWS(PA)
    DCOLS(PB)
    DROWS(ZROW)
    const int kv = (k1 - k0) & ~15;
    for (int p = 0; p < kv; p += 16) {
#define LA(r) const float16 va##r = vload16(0, pa##r + p);
#define LB(q) const float16 vb##q = vload16(0, pb##q + p);
#define FMA2(r, q) s##r##_##q = fma(va##r, vb##q, s##r##_##q);
#define FROW(r) DPAIRS(FMA2, r)
        DROWS(LA)
        DCOLS(LB)
        DROWS(FROW)
    }
    const int nr = m - i0, nq = n - j0;
    __global float *cc = c + coff + s * sstride + (size_t)i0 * ldc + j0;
#define PUTD(r, q)                                                                                \
    if (r < nr && q < nq) {                                                                       \
        float v = hsum16(s##r##_##q);                                                             \
        for (int p = kv; p < k1 - k0; p++) v = fma(pa##r[p], pb##q[p], v);                        \
        __global float *o = cc + (size_t)r * ldc + q;                                             \
        *o = beta != 0.0f ? fma(beta, *o, alpha * v) : alpha * v;                                 \
    }
#define PROW(r) DPAIRS(PUTD, r)
    DROWS(PROW)
}

/* C(i, j) = alpha * sum over s < ns of part[s * m * n + i * n + j] + beta * C(i, j), summed in
 * order of s. */
__kernel void gemm_reduce(__global const float *part, const int ns, __global float *c,
                          const ulong coff, const int ldc, const int m, const int n,
                          const float alpha, const float beta) {
    const int j = get_global_id(0), i = get_global_id(1);
    const size_t stride = (size_t)m * n;
    __global const float *p = part + (size_t)i * n + j;
    float acc = 0.0f;
    for (int s = 0; s < ns; s++) acc += p[s * stride];
    __global float *q = c + coff + (size_t)i * ldc + j;
    *q = beta != 0.0f ? fma(beta, *q, alpha * acc) : alpha * acc;
}
