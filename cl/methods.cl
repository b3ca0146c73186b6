/* Per-batch kernels of the adversarial training methods.
 * CPU class: one work-item per sample. GPU class: one work-group per sample for the losses
 * (RC_LAUNCH_EACH; their sums over a row and RAMP's count over the batch are tree reductions,
 * cl/common.cl; why a group even at K = 10: ce_forward_backward in cl/loss.cl) and one
 * work-item per float for MAX's selection. */

/* MAX: the adversarial examples of sample b's threat model with the highest attack loss (first
 * maximum wins, threat models in the caller's order). */
static __global const float *max_source(__global const float *adv0, __global const float *adv1,
                                        __global const float *adv2, __global const float *loss0,
                                        __global const float *loss1, __global const float *loss2,
                                        const int n_threats, const int b) {
    int best = 0;
    float l = loss0[b];
    if (n_threats > 1 && loss1[b] > l) best = 1, l = loss1[b];
    if (n_threats > 2 && loss2[b] > l) best = 2;
    return best == 0 ? adv0 : best == 1 ? adv1 : adv2;
}

/* MAX: per sample, the adversarial example of max_source. CPU class: one work-item per sample
 * (global size B); GPU class: one per float (global size d x B). */
__kernel void method_select_max(__global const float *adv0, __global const float *adv1,
                                __global const float *adv2, __global const float *loss0,
                                __global const float *loss1, __global const float *loss2,
                                const int n_threats, __global float *out, const int B,
                                const int d) {
#if RC_GPU
    const int j = get_global_id(0), b = get_global_id(1);
    if (j >= d || b >= B) return;
    const size_t i = (size_t)b * d + j;
    out[i] = max_source(adv0, adv1, adv2, loss0, loss1, loss2, n_threats, b)[i];
#else
    const int b = get_global_id(0);
    if (b >= B) return;
    __global const float *src = max_source(adv0, adv1, adv2, loss0, loss1, loss2, n_threats, b);
    const size_t off = (size_t)b * d;
    copy_row(out + off, src + off, d);
#endif
}

#if RC_GPU
/* The GPU class's helpers, by the work-group of sample n (see the wg_row_* helpers in
 * cl/common.cl for lanes and ilanes). */

/* ce_row's gradient with the row's maximum mx given; returns its log-sum-exp. */
static float wg_ce_lse(__global const float *z, const int y, const int K, const float mx,
                       const float scale, __global float *dz, __local float *lanes) {
    const float lse = wg_row_lse_at(z, K, mx, lanes);
    ce_grad_cols(z, y, get_local_id(0), get_local_size(0), K, lse, scale, dz);
    return lse;
}

/* ramp_pairing by the work-group. |M| sums the batch's hits in lanes (exact: a count below
 * 2^24); every group counts the whole batch, N K comparisons, as each CPU work-item does. */
static float wg_ramp_pairing(__global const float *zq, __global const float *zr,
                             __global const int *labels, const float lambda, const int N,
                             const int NB, const int m_other, const int K, const int n,
                             __global float *dzq, __global float *dzr, __local float *lanes,
                             __local int *ilanes) {
    const int lid = get_local_id(0), L = get_local_size(0);
    for (int v = lid; v < RC_LANES; v += L) {
        float hits = 0.0f;
        for (int i = v; i < N; i += RC_LANES)
            hits += row_argmax(zq + (size_t)i * K, K) == labels[i] ? 1.0f : 0.0f;
        lanes[v] = hits;
    }
    const float m_count = wg_tree_sum(lanes) + (float)m_other;
    const size_t off = (size_t)n * K;
    const int aq = wg_row_argmax(zq + off, K, lanes, ilanes);
    if (aq != labels[n]) {
        for (int k = lid; k < K; k += L) dzq[off + k] = 0.0f, dzr[off + k] = 0.0f;
        return 0.0f;
    }
    const int ar = wg_row_argmax(zr + off, K, lanes, ilanes);
    const float lq = wg_row_lse_at(zq + off, K, zq[off + aq], lanes);
    const float lr = wg_row_lse_at(zr + off, K, zr[off + ar], lanes);
    const float kl = wg_kl_rows(zq + off, lq, zr + off, lr, K, lanes);
    const float scale = lambda / m_count;
    kl_cols_grad(zq + off, lq, zr + off, lr, lid, L, K, kl, scale, dzq + off, dzr + off, 0);
    return scale * kl * (float)NB;
}
#else
/* Cross-entropy of sample n's logits z (row off) with label y; dz = (softmax - onehot) * scale. */
static float ce_row(__global const float *z, const int y, const int K, const float scale,
                    __global float *dz) {
    const float lse = row_lse(z, K);
    ce_grad_row(z, y, K, lse, scale, dz);
    return lse - z[y];
}

/* RAMP's logit pairing for sample n: lambda * mean over M of KL(p_q || p_r), M = {i : argmax
 * z_q,i = y_i} (detached), 0 when M is empty. Gradients flow through both p_q and p_r:
 *   dKL/dz_r = p_r - p_q,  dKL/dz_q = p_q * (log p_q - log p_r - KL).
 * The N samples here may be a slice of a batch of NB split across processes, m_other of whose
 * other samples are in M (ramp/dist.h; one process: NB = N, m_other = 0).
 * Writes sample n's rows of dzq and dzr; returns its share of the term times NB. */
static float ramp_pairing(__global const float *zq, __global const float *zr,
                          __global const int *labels, const float lambda, const int N,
                          const int NB, const int m_other, const int K, const int n,
                          __global float *dzq, __global float *dzr) {
    int m_count = m_other, in_m = 0;
    for (int i = 0; i < N; i++) {
        const int hit = row_argmax(zq + (size_t)i * K, K) == labels[i];
        m_count += hit;
        if (i == n) in_m = hit;
    }
    const size_t off = (size_t)n * K;
    if (!in_m) {
        for (int k = 0; k < K; k++) dzq[off + k] = 0.0f, dzr[off + k] = 0.0f;
        return 0.0f;
    }
    const float lq = row_lse(zq + off, K), lr = row_lse(zr + off, K);
    const float kl = kl_rows(zq + off, lq, zr + off, lr, K);
    const float scale = lambda / (float)m_count;
    kl_rows_grad(zq + off, lq, zr + off, lr, K, kl, scale, dzq + off, dzr + off, 0);
    return scale * kl * (float)NB;
}
#endif

/* RAMP's loss (Jiang & Singh, RAMP) for one batch of NB, of which these are N (NB, m_other:
 * ramp_pairing), with its gradients with respect to the three sets of logits: L = mean_b
 * CE(z_b) + the logit pairing (ramp_pairing). loss[n] is sample n's share of L times NB (so the
 * batch mean is L); correct[n] is for z_b. */
__kernel void ramp_loss(__global const float *zq, __global const float *zr,
                        __global const float *zb, __global const int *labels, const float lambda,
                        const int N, const int NB, const int m_other, const int K,
                        __global float *dzq, __global float *dzr, __global float *dzb,
                        __global float *loss, __global float *correct) {
#if RC_GPU
    __local float lanes[RC_LANES];
    __local int ilanes[RC_LANES];
    const int n = get_group_id(0);
    const size_t off = (size_t)n * K;
    const int y = labels[n];
    const int ab = wg_row_argmax(zb + off, K, lanes, ilanes);
    const float lb = wg_ce_lse(zb + off, y, K, zb[off + ab], 1.0f / (float)NB, dzb + off, lanes);
    const float pair =
        wg_ramp_pairing(zq, zr, labels, lambda, N, NB, m_other, K, n, dzq, dzr, lanes, ilanes);
    if (get_local_id(0) == 0) {
        correct[n] = ab == y ? 1.0f : 0.0f;
        loss[n] = lb - zb[off + y] + pair;
    }
#else
    const int n = get_global_id(0);
    if (n >= N) return;
    const size_t off = (size_t)n * K;
    const int y = labels[n];
    correct[n] = row_argmax(zb + off, K) == y ? 1.0f : 0.0f;
    const float l = ce_row(zb + off, y, K, 1.0f / (float)NB, dzb + off);
    loss[n] = l + ramp_pairing(zq, zr, labels, lambda, N, NB, m_other, K, n, dzq, dzr);
#endif
}

/* RAMP with the TRADES outer loss (Jiang & Singh, RAMP; the reference's RAMP_wide_resnet.py):
 *   L = mean_b CE(z_c) + beta * mean_b KL(p_c || p_b) + the logit pairing,
 * z_c the clean logits, z_b those of the MAX-selected examples. Gradients of the TRADES term:
 *   dKL/dz_b = p_b - p_c,  dKL/dz_c = p_c * (log p_c - log p_b - KL).
 * N, NB, m_other as ramp_loss's; loss[n] is sample n's share of L times NB; correct[n] is for
 * z_b. */
__kernel void ramp_trades_loss(__global const float *zq, __global const float *zr,
                               __global const float *zb, __global const float *zc,
                               __global const int *labels, const float lambda, const float beta,
                               const int N, const int NB, const int m_other, const int K,
                               __global float *dzq,
                               __global float *dzr, __global float *dzb, __global float *dzc,
                               __global float *loss, __global float *correct) {
#if RC_GPU
    __local float lanes[RC_LANES];
    __local int ilanes[RC_LANES];
    const int n = get_group_id(0), lid = get_local_id(0);
    const size_t off = (size_t)n * K;
    const int y = labels[n];
    const int ab = wg_row_argmax(zb + off, K, lanes, ilanes);
    const int ac = wg_row_argmax(zc + off, K, lanes, ilanes);
    const float lc = wg_ce_lse(zc + off, y, K, zc[off + ac], 1.0f / (float)NB, dzc + off, lanes);
    const float lb = wg_row_lse_at(zb + off, K, zb[off + ab], lanes);
    const float kl = wg_kl_rows(zc + off, lc, zb + off, lb, K, lanes);
    /* the same columns as wg_ce_lse's: each work-item adds to its own gradient entries */
    kl_cols_grad(zc + off, lc, zb + off, lb, lid, get_local_size(0), K, kl, beta / (float)NB,
                 dzc + off, dzb + off, 1);
    const float pair =
        wg_ramp_pairing(zq, zr, labels, lambda, N, NB, m_other, K, n, dzq, dzr, lanes, ilanes);
    if (lid == 0) {
        correct[n] = ab == y ? 1.0f : 0.0f;
        loss[n] = lc - zc[off + y] + beta * kl + pair;
    }
#else
    const int n = get_global_id(0);
    if (n >= N) return;
    const size_t off = (size_t)n * K;
    const int y = labels[n];
    correct[n] = row_argmax(zb + off, K) == y ? 1.0f : 0.0f;
    float l = ce_row(zc + off, y, K, 1.0f / (float)NB, dzc + off);
    const float lc = row_lse(zc + off, K), lb = row_lse(zb + off, K);
    const float kl = kl_rows(zc + off, lc, zb + off, lb, K);
    kl_rows_grad(zc + off, lc, zb + off, lb, K, kl, beta / (float)NB, dzc + off, dzb + off, 1);
    l += beta * kl;
    loss[n] = l + ramp_pairing(zq, zr, labels, lambda, N, NB, m_other, K, n, dzq, dzr);
#endif
}

/* One of AVG's T passes: CE of the pass's logits z, dz = (softmax - onehot) * scale (scale =
 * 1 / (T N)), and the running means over the passes: loss[n] (= first ? 0 : loss[n]) +
 * CE * inv_t, correct[n] likewise. */
__kernel void avg_loss(__global const float *z, __global const int *labels, const float inv_t,
                       const float scale, const int first, const int N, const int K,
                       __global float *dz, __global float *loss, __global float *correct) {
#if RC_GPU
    __local float lanes[RC_LANES];
    __local int ilanes[RC_LANES];
    const int n = get_group_id(0);
    const size_t off = (size_t)n * K;
    const int y = labels[n];
    const int arg = wg_row_argmax(z + off, K, lanes, ilanes);
    const float l = wg_ce_lse(z + off, y, K, z[off + arg], scale, dz + off, lanes) - z[off + y];
    const float c = arg == y ? 1.0f : 0.0f;
    if (get_local_id(0) != 0) return;
#else
    const int n = get_global_id(0);
    if (n >= N) return;
    const size_t off = (size_t)n * K;
    const int y = labels[n];
    const float l = ce_row(z + off, y, K, scale, dz + off);
    const float c = row_argmax(z + off, K) == y ? 1.0f : 0.0f;
#endif
    loss[n] = (first ? 0.0f : loss[n]) + l * inv_t;
    correct[n] = (first ? 0.0f : correct[n]) + c * inv_t;
}
