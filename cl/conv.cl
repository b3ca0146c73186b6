/* Convolution as GEMM. Columns are laid out col[k][n*P + p] (k = (c*KH + i)*KW + j, P = OH*OW),
 * so one GEMM covers the whole batch: Z[OC][N*P] = W[OC][K] x col. Z is scattered to NCHW.
 */

/* CPU class: one work-item per plane or row, looping over contiguous addresses: PoCL then runs
 * large work-groups and the index arithmetic (divisions) happens once per plane, not per element.
 * GPU class: one element per work-item in the order of the tensor written, so that neighbouring
 * work-items write neighbouring addresses (and read nearly neighbouring ones). */

#if RC_GPU
/* global (K * N * P): one column entry col[k][n*P + p] per work-item. */
__kernel void conv_im2col(__global const float *x, __global float *col, const int N, const int C,
                          const int H, const int W, const int KH, const int KW, const int stride,
                          const int pad, const int OH, const int OW) {
    const int P = OH * OW, g = get_global_id(0);
    if (g >= C * KH * KW * N * P) return;
    const int t = g / P, p = g - t * P, k = t / N, n = t - k * N;
    const int kr = k / KW, j = k - kr * KW, c = kr / KH, i = kr - c * KH;
    const int oh = p / OW, ow = p - oh * OW;
    const int h = oh * stride - pad + i, w = ow * stride - pad + j;
    col[g] = h >= 0 && h < H && w >= 0 && w < W ? x[((size_t)(n * C + c) * H + h) * W + w] : 0.0f;
}

/* dx[n][c][h][w] (+)= the column entries that read it, global (N * C * H * W): a gather, added in
 * the order of the kernel offsets (i, j) as the CPU class does, so both give the same sums. */
__kernel void conv_col2im(__global const float *col, __global float *dx, const int N, const int C,
                          const int H, const int W, const int KH, const int KW, const int stride,
                          const int pad, const int OH, const int OW, const int accumulate) {
    const int g = get_global_id(0);
    if (g >= N * C * H * W) return;
    const int t = g / W, w = g - t * W, nc = t / H, h = t - nc * H, n = nc / C, c = nc - n * C;
    const int P = OH * OW;
    const size_t NP = (size_t)N * P;
    float s = accumulate ? dx[g] : 0.0f;
    for (int i = 0; i < KH; i++) {
        const int th = h + pad - i, oh = th / stride; /* output row oh reads row h */
        if (th < 0 || oh * stride != th || oh >= OH) continue;
        for (int j = 0; j < KW; j++) {
            const int tw = w + pad - j, ow = tw / stride;
            if (tw < 0 || ow * stride != tw || ow >= OW) continue;
            s += col[(size_t)((c * KH + i) * KW + j) * NP + (size_t)n * P + oh * OW + ow];
        }
    }
    dx[g] = s;
}
#else
/* global (K * N): work-item (k, n) writes the P = OH*OW columns entries of row k for image n. */
__kernel void conv_im2col(__global const float *x, __global float *col, const int N, const int C,
                          const int H, const int W, const int KH, const int KW, const int stride,
                          const int pad, const int OH, const int OW) {
    const int g = get_global_id(0);
    if (g >= N * C * KH * KW) return;
    const int k = g / N, n = g - k * N;
    const int kr = k / KW, j = k - kr * KW, c = kr / KH, i = kr - c * KH;
    __global const float *xp = x + (size_t)(n * C + c) * H * W;
    __global float *out = col + (size_t)k * N * OH * OW + (size_t)n * OH * OW;
    for (int oh = 0; oh < OH; oh++) {
        const int h = oh * stride - pad + i;
        const int inside = h >= 0 && h < H;
        for (int ow = 0; ow < OW; ow++) {
            const int w = ow * stride - pad + j;
            out[oh * OW + ow] = inside && w >= 0 && w < W ? xp[h * W + w] : 0.0f;
        }
    }
}

/* dx[n][c] (+)= the column entries that read it. One input plane per work-item, global (N * C):
 * for each kernel offset (i, j) the column row is read contiguously and added into the plane,
 * which stays in cache. A fixed loop order and no sharing between work-items: deterministic. */
__kernel void conv_col2im(__global const float *col, __global float *dx, const int N, const int C,
                          const int H, const int W, const int KH, const int KW, const int stride,
                          const int pad, const int OH, const int OW, const int accumulate) {
    const int nc = get_global_id(0);
    if (nc >= N * C) return;
    const int n = nc / C, c = nc - n * C;
    const int P = OH * OW;
    const size_t NP = (size_t)N * P;
    __global float *out = dx + (size_t)nc * H * W;
    if (!accumulate)
        for (int q = 0; q < H * W; q++) out[q] = 0.0f;
    for (int i = 0; i < KH; i++)
        for (int j = 0; j < KW; j++) {
            __global const float *src = col + (size_t)((c * KH + i) * KW + j) * NP + (size_t)n * P;
            /* output columns ow whose input column w = ow*stride - pad + j lies inside */
            const int ow_lo = pad - j > 0 ? (pad - j + stride - 1) / stride : 0;
            const int ow_hi = min(OW, (W - 1 + pad - j) / stride + 1);
            for (int oh = 0; oh < OH; oh++) {
                const int h = oh * stride - pad + i;
                if (h < 0 || h >= H) continue;
                const int base = h * W - pad + j; /* + ow * stride: inside the row */
                __global const float *srow = src + oh * OW;
                for (int ow = ow_lo; ow < ow_hi; ow++) out[base + ow * stride] += srow[ow];
            }
        }
}
#endif

/* y[n][oc][p] = Z[oc][n*P + p] (+ bias[oc]), over the N * OC planes of y (plane_elems). */
__kernel void conv_scatter(__global const float *z, __global float *y, __global const float *bias,
                           const int has_bias, const int N, const int OC, const int P) {
    int g, p0, p1;
    if (!plane_elems(N * OC, P, &g, &p0, &p1)) return;
    const int n = g / OC, oc = g - n * OC;
    const float b = has_bias ? bias[oc] : 0.0f;
    __global const float *src = z + (size_t)oc * N * P + (size_t)n * P;
    __global float *dst = y + (size_t)g * P;
    for (int p = p0; p < p1; p++) dst[p] = src[p] + b;
}

/* dZ[oc][n*P + p] = dy[n][oc][p], over the N * OC planes of dy (plane_elems). */
__kernel void conv_gather(__global const float *dy, __global float *dz, const int N, const int OC,
                          const int P) {
    int g, p0, p1;
    if (!plane_elems(N * OC, P, &g, &p0, &p1)) return;
    const int n = g / OC, oc = g - n * OC;
    __global const float *src = dy + (size_t)g * P;
    __global float *dst = dz + (size_t)oc * N * P + (size_t)n * P;
    for (int p = p0; p < p1; p++) dst[p] = src[p];
}

#if RC_GPU
/* db[oc] = sum over n, p of dZ[oc][n*P + p] (conv_gather's output, contiguous per oc), one
 * work-group per oc (OC groups) in the fixed lanes of wg_sum. */
__kernel void conv_bias_grad(__global const float *dz, __global float *db, const int N,
                             const int OC, const int P, const int accumulate) {
    __local float lanes[RC_LANES];
    const int oc = get_group_id(0);
    const float s = wg_sum(dz + (size_t)oc * N * P, N * P, lanes);
    if (get_local_id(0) == 0) db[oc] = accumulate ? db[oc] + s : s;
}
#else
/* db[oc] = sum over n, p of dy[n][oc][p], in a fixed order. */
__kernel void conv_bias_grad(__global const float *dy, __global float *db, const int N,
                             const int OC, const int P, const int accumulate) {
    const int oc = get_global_id(0);
    if (oc >= OC) return;
    float acc = 0.0f;
    for (int n = 0; n < N; n++)
        for (int p = 0; p < P; p++) acc += dy[((size_t)n * OC + oc) * P + p];
    db[oc] = accumulate ? db[oc] + acc : acc;
}
#endif
