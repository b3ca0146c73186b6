/* tensor_diff A.safetensors B.safetensors TOL: compares two checkpoints of the same model tensor
 * by tensor (tests/implementations.sh uses it to compare runs on different OpenCL
 * implementations). For each float tensor prints max |a - b| / max(1, max |a|); the exit status
 * is 1 when a tensor differs by more than TOL (or the files do not hold the same tensors), 2 on a
 * usage or read error. Integer tensors (step counters) must be equal. */
#include "ramp/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double max_rel_diff(const rc_st_entry *a, const rc_st_entry *b) {
    size_t n = a->nbytes / sizeof(float);
    double dmax = 0, amax = 0;
    for (size_t i = 0; i < n; i++) {
        float x, y;
        memcpy(&x, (const char *)a->data + i * sizeof x, sizeof x);
        memcpy(&y, (const char *)b->data + i * sizeof y, sizeof y);
        if (isnan(x) != isnan(y)) return INFINITY;
        if (fabs((double)x - y) > dmax) dmax = fabs((double)x - y);
        if (fabs(x) > amax) amax = fabs(x);
    }
    return dmax / (amax > 1 ? amax : 1);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: tensor_diff A.safetensors B.safetensors TOL\n");
        return 2;
    }
    double tol = strtod(argv[3], NULL);
    rc_st_file fa, fb;
    rc_err e;
    memset(&fa, 0, sizeof fa);
    memset(&fb, 0, sizeof fb);
    if (rc_st_open(&fa, argv[1], &e) || rc_st_open(&fb, argv[2], &e)) {
        fprintf(stderr, "tensor_diff: %s\n", e.msg);
        rc_st_close(&fa);
        return 2;
    }
    int bad = rc_st_count(&fa) != rc_st_count(&fb);
    if (bad) printf("different tensor counts: %zu and %zu\n", rc_st_count(&fa), rc_st_count(&fb));
    double worst = 0;
    const char *worst_name = "";
    for (size_t i = 0; i < rc_st_count(&fa); i++) {
        const rc_st_entry *a = rc_st_entry_at(&fa, i), *b = rc_st_find(&fb, a->name);
        if (!b || b->dtype != a->dtype || b->nbytes != a->nbytes) {
            printf("%s: missing or of another type or size in %s\n", a->name, argv[2]);
            bad = 1;
            continue;
        }
        double d = a->dtype == RC_ST_F32 ? max_rel_diff(a, b)
                                         : (memcmp(a->data, b->data, a->nbytes) ? INFINITY : 0);
        if (d > tol) {
            printf("%s: differs by %.3g (tolerance %.3g)\n", a->name, d, tol);
            bad = 1;
        }
        if (d >= worst) worst = d, worst_name = a->name;
    }
    printf("largest difference %.3g in %s (tolerance %.3g): %s\n", worst, worst_name, tol,
           bad ? "DIFFERENT" : "equal within tolerance");
    rc_st_close(&fa);
    rc_st_close(&fb);
    return bad;
}
