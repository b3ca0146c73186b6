/* Per-batch kernels of the adversarial training methods. */

/* MAX: per sample, the adversarial example of the threat model with the highest attack loss
 * (first maximum wins, threat models in the caller's order). One work-item per sample. */
__kernel void method_select_max(__global const float *adv0, __global const float *adv1,
                                __global const float *adv2, __global const float *loss0,
                                __global const float *loss1, __global const float *loss2,
                                const int n_threats, __global float *out, const int B,
                                const int d) {
    const int b = get_global_id(0);
    if (b >= B) return;
    int best = 0;
    float l = loss0[b];
    if (n_threats > 1 && loss1[b] > l) best = 1, l = loss1[b];
    if (n_threats > 2 && loss2[b] > l) best = 2;
    __global const float *src = best == 0 ? adv0 : best == 1 ? adv1 : adv2;
    const size_t off = (size_t)b * d;
    for (int j = 0; j < d; j++) out[off + j] = src[off + j];
}

/* RAMP's loss (spec 4) for one batch, with its gradients with respect to the three sets of
 * logits: L = mean_b CE(z_b) + lambda * mean over M of KL(p_q || p_r), M = {i : argmax z_q,i = y_i}
 * (detached), L_KL = 0 when M is empty. Gradients flow through both p_q and p_r:
 *   dKL/dz_r = p_r - p_q,  dKL/dz_q = p_q * (log p_q - log p_r - KL).
 * loss[n] is sample n's share of L times N (so the batch mean is L); correct[n] is for z_b. */
__kernel void ramp_loss(__global const float *zq, __global const float *zr,
                        __global const float *zb, __global const int *labels, const float lambda,
                        const int N, const int K, __global float *dzq, __global float *dzr,
                        __global float *dzb, __global float *loss, __global float *correct) {
    const int n = get_global_id(0);
    if (n >= N) return;
    int m_count = 0, in_m = 0;
    for (int i = 0; i < N; i++) {
        __global const float *row = zq + (size_t)i * K;
        int arg = 0;
        for (int k = 1; k < K; k++)
            if (row[k] > row[arg]) arg = k;
        const int hit = arg == labels[i];
        m_count += hit;
        if (i == n) in_m = hit;
    }
    const size_t off = (size_t)n * K;
    const int y = labels[n];
    /* CE on the MAX-selected example */
    float mx = zb[off], s = 0.0f;
    int arg = 0;
    for (int k = 1; k < K; k++)
        if (zb[off + k] > mx) mx = zb[off + k], arg = k;
    for (int k = 0; k < K; k++) s += exp(zb[off + k] - mx);
    const float lse_b = mx + log(s);
    for (int k = 0; k < K; k++)
        dzb[off + k] = (exp(zb[off + k] - lse_b) - (k == y ? 1.0f : 0.0f)) / (float)N;
    correct[n] = arg == y ? 1.0f : 0.0f;
    float l = lse_b - zb[off + y];
    /* logit pairing */
    if (in_m) {
        float mq = zq[off], mr = zr[off];
        for (int k = 1; k < K; k++) mq = fmax(mq, zq[off + k]), mr = fmax(mr, zr[off + k]);
        float sq = 0.0f, sr = 0.0f;
        for (int k = 0; k < K; k++) sq += exp(zq[off + k] - mq), sr += exp(zr[off + k] - mr);
        const float lq = mq + log(sq), lr = mr + log(sr);
        float kl = 0.0f;
        for (int k = 0; k < K; k++) {
            const float lpq = zq[off + k] - lq, lpr = zr[off + k] - lr;
            kl += exp(lpq) * (lpq - lpr);
        }
        const float scale = lambda / (float)m_count;
        for (int k = 0; k < K; k++) {
            const float lpq = zq[off + k] - lq, lpr = zr[off + k] - lr;
            const float pq = exp(lpq), pr = exp(lpr);
            dzr[off + k] = scale * (pr - pq);
            dzq[off + k] = scale * pq * (lpq - lpr - kl);
        }
        l += scale * kl * (float)N;
    } else {
        for (int k = 0; k < K; k++) dzq[off + k] = 0.0f, dzr[off + k] = 0.0f;
    }
    loss[n] = l;
}
