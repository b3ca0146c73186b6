/* Softmax cross-entropy with mean reduction, fused with its gradient and per-sample accuracy. */

/* Per sample: loss[n] = logsumexp(z) - z[y], correct[n] = (argmax z == y, first max wins),
 * dz = (softmax(z) - onehot(y)) * scale (scale = 1/N for the mean). dz may be NULL-like when
 * want_grad is 0.
 * CPU class: one work-item per sample. GPU class: one work-group per sample (RC_LAUNCH_EACH):
 * neighbouring work-items read neighbouring logits and the row's max and sum are tree reductions,
 * which is what K = 1000 (ImageNet) needs; at K = 10 most of the group idles, but the kernel runs
 * once per batch next to a whole network. */
__kernel void ce_forward_backward(__global const float *z, __global const int *labels,
                                  __global float *loss, __global float *correct,
                                  __global float *dz, const int N, const int K, const float scale,
                                  const int want_grad) {
#if RC_GPU
    __local float lanes[RC_LANES];
    __local int ilanes[RC_LANES];
    const int n = get_group_id(0), lid = get_local_id(0);
    __global const float *row = z + (size_t)n * K;
    const int y = labels[n];
    const int arg = wg_row_argmax(row, K, lanes, ilanes);
    const float lse = wg_row_lse_at(row, K, row[arg], lanes);
    if (lid == 0) {
        loss[n] = lse - row[y];
        correct[n] = arg == y ? 1.0f : 0.0f;
    }
    if (want_grad) ce_grad_cols(row, y, lid, get_local_size(0), K, lse, scale, dz + (size_t)n * K);
#else
    const int n = get_global_id(0);
    if (n >= N) return;
    __global const float *row = z + (size_t)n * K;
    const int y = labels[n];
    const int arg = row_argmax(row, K);
    const float lse = row_lse_at(row, K, row[arg]);
    loss[n] = lse - row[y];
    correct[n] = arg == y ? 1.0f : 0.0f;
    if (want_grad) ce_grad_row(row, y, K, lse, scale, dz + (size_t)n * K);
#endif
}

/* acc[0] += sum of loss, acc[1] += sum of correct, acc[2] += N, in a fixed order, so the host
 * reads training statistics only when it reports them. CPU class: one work-item; GPU class: one
 * work-group (RC_LAUNCH_EACH with one item), the sums tree reductions. */
__kernel void ce_accumulate(__global const float *loss, __global const float *correct,
                            __global float *acc, const int N) {
#if RC_GPU
    __local float lanes[RC_LANES];
    const float l = wg_sum(loss, N, lanes);
    const float c = wg_sum(correct, N, lanes);
    if (get_local_id(0) != 0) return;
#else
    if (get_global_id(0) != 0) return;
    float l = 0.0f, c = 0.0f;
    for (int n = 0; n < N; n++) {
        l += loss[n];
        c += correct[n];
    }
#endif
    acc[0] += l;
    acc[1] += c;
    acc[2] += (float)N;
}

/* Attack losses, per sample, with the gradient of their SUM (attacks ascend sum_i loss_i):
 * kind 0 = cross-entropy, 1 = DLR, 2 = targeted DLR (target class in targets[n]), the losses of
 * the reference's APGD (auto-attack, autopgd_base.py: dlr_loss and dlr_loss_targeted); kind 3 =
 * the logit difference z_t - z_y of targeted FAB (fab_pt.py,
 * get_diff_logits_grads_batch_targeted).
 * correct[n] = (argmax z == y), first maximum wins. One work-item per sample on both classes: no
 * sum over the batch, and the top-4 search is a few passes over a row. */
__kernel void attack_loss(__global const float *z, __global const int *labels,
                          __global const int *targets, __global float *loss,
                          __global float *correct, __global float *dz, const int N, const int K,
                          const int kind) {
    const int n = get_global_id(0);
    if (n >= N) return;
    __global const float *row = z + (size_t)n * K;
    __global float *drow = dz + (size_t)n * K;
    const int y = labels[n];
    /* the four largest logits, in order (ties: lower index first) */
    int top[4] = {-1, -1, -1, -1};
    for (int r = 0; r < 4 && r < K; r++) {
        int best = -1;
        for (int k = 0; k < K; k++) {
            int used = 0;
            for (int q = 0; q < r; q++) used |= top[q] == k;
            if (!used && (best < 0 || row[k] > row[best])) best = k;
        }
        top[r] = best;
    }
    correct[n] = top[0] == y ? 1.0f : 0.0f;
    for (int k = 0; k < K; k++) drow[k] = 0.0f;
    if (kind == 0) {
        const float lse = row_lse_at(row, K, row[top[0]]);
        loss[n] = lse - row[y];
        ce_grad_row(row, y, K, lse, 1.0f, drow); /* x * 1.0f == x: unscaled */
    } else if (kind == 1) {
        /* DLR = -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3 + 1e-12) */
        const int m = top[0] == y ? top[1] : top[0];
        const float num = row[y] - row[m];
        const float den = row[top[0]] - row[top[2]] + 1e-12f;
        loss[n] = -num / den;
        drow[y] += -1.0f / den;
        drow[m] += 1.0f / den;
        drow[top[0]] += num / (den * den);
        drow[top[2]] -= num / (den * den);
    } else if (kind == 3) {
        loss[n] = row[targets[n]] - row[y];
        drow[targets[n]] += 1.0f;
        drow[y] -= 1.0f;
    } else {
        /* targeted DLR = -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12) */
        const int t = targets[n];
        const float num = row[y] - row[t];
        const float den = row[top[0]] - 0.5f * (row[top[2]] + row[top[3]]) + 1e-12f;
        loss[n] = -num / den;
        drow[y] += -1.0f / den;
        drow[t] += 1.0f / den;
        drow[top[0]] += num / (den * den);
        drow[top[2]] -= 0.5f * num / (den * den);
        drow[top[3]] -= 0.5f * num / (den * den);
    }
}
