/* Global average pooling: [N][C][HW] -> [N][C]. */

#if RC_GPU
/* One work-group per plane (NC groups), summed in the fixed lanes of wg_sum: coalesced, and
 * independent of the work-group size. */
__kernel void gap_forward(__global const float *x, __global float *y, const int NC, const int HW) {
    __local float lanes[RC_LANES];
    const int i = get_group_id(0);
    const float s = wg_sum(x + (size_t)i * HW, HW, lanes);
    if (get_local_id(0) == 0) y[i] = s / (float)HW;
}
#else
/* One plane per work-item. */
__kernel void gap_forward(__global const float *x, __global float *y, const int NC, const int HW) {
    const int i = get_global_id(0);
    if (i >= NC) return;
    __global const float *p = x + (size_t)i * HW;
    float s = 0.0f;
    for (int k = 0; k < HW; k++) s += p[k];
    y[i] = s / (float)HW;
}
#endif

/* One element per work-item, on both classes. */
__kernel void gap_backward(__global const float *dy, __global float *dx, const int NC,
                           const int HW, const int accumulate) {
    const int idx = get_global_id(0);
    if (idx >= NC * HW) return;
    const float g = dy[idx / HW] / (float)HW;
    dx[idx] = accumulate ? dx[idx] + g : g;
}
