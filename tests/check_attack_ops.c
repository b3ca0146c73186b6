/* The attack primitives (include/ramp/attack_ops.h) against host references: the l_inf and l_2
 * steps and momentum, the l_1 top-k threshold, sparse step and exact projection, and the l_0
 * count.
 *
 * The l_1 projection is checked three ways: against a float64 host reference that sorts the
 * breakpoints and solves the piecewise-linear equation directly; for small d, by the optimality
 * condition of a projection onto a convex polytope, <y - p, q - p> <= 0 for every vertex q of the
 * feasible set (all enumerated); and against many random feasible points, none of which may be
 * closer to y than p. */
#include "ramp/attack_ops.h"
#include "ramp/launch.h"
#include "testutil.h"

#include <math.h>

/* ---- helpers ------------------------------------------------------------------------------ */

static float *fmalloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    ck_assert(p != NULL);
    return p;
}
static double *dmalloc(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    ck_assert(p != NULL);
    return p;
}
static double sgn(double v) { return v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0; }
static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* A coordinate of x in [0, 1] that is 0 when U[0, 1) < lo, 1 when it is > hi, else uniform: some
 * coordinates on the box faces. */
static float face_or_inside(unsigned *seed, float lo, float hi) {
    float r = urand(seed, 0, 1);
    return r < lo ? 0.0f : r > hi ? 1.0f : urand(seed, 0, 1);
}

#define CK(call)                                                                                   \
    do {                                                                                           \
        rc_err e_ = {.msg = ""};                                                                   \
        ck_assert_msg((call) == 0, "%s: %s", #call, e_.msg);                                       \
    } while (0)
/* CK needs the call to use e_ as its error argument */
#define E (&e_)

typedef struct env {
    rc_ctx ctx;
    rc_attack_scratch s;
} env;

static void env_open(env *v, int B, int d) {
    test_open_ctx(&v->ctx);
    CK(rc_attack_scratch_alloc(&v->ctx, &v->s, B, d, E));
}
static void env_close(env *v) {
    rc_attack_scratch_free(&v->s);
    rc_ctx_close(&v->ctx);
}

static void finish(rc_ctx *ctx) { CK(rc_ctx_finish(ctx, E)); }

/* ---- float64 host reference of the l_1 projection ------------------------------------------ */

static void box_mag(double x, double y, double *v, double *a) {
    double u = fmin(0.0, fmin(1.0 - x - y, x + y));
    *a = fabs(y);
    *v = fmin(-u, *a);
}

/* F(lambda) = sum_j clip(lambda, v_j, a_j), evaluated directly */
static double F_at(int d, const double *v, const double *a, double lam) {
    double s = 0;
    for (int j = 0; j < d; j++) s += fmin(fmax(lam, v[j]), a[j]);
    return s;
}

static int cmp_double(const void *p, const void *q) {
    double a = *(const double *)p, b = *(const double *)q;
    return a < b ? -1 : a > b;
}

/* out = argmin_{||p||_1 <= eps, 0 <= x+p <= 1} ||p - y||_2, by sorting the breakpoints and a
 * binary search of F over them; F is linear between consecutive breakpoints. */
static void l1_project_ref(int d, const float *x, const float *y, double eps, double *out) {
    double *v = dmalloc((size_t)d), *a = dmalloc((size_t)d), *bp = dmalloc(2 * (size_t)d + 1);
    double sv = 0, sa = 0;
    for (int j = 0; j < d; j++) {
        box_mag(x[j], y[j], &v[j], &a[j]);
        sv += v[j];
        sa += a[j];
    }
    double lam = 0;
    const double T = sa - eps;
    if (sv < T) {
        int n = 0;
        bp[n++] = 0;
        for (int j = 0; j < d; j++) bp[n++] = v[j], bp[n++] = a[j];
        qsort(bp, (size_t)n, sizeof *bp, cmp_double);
        /* F(bp[0] = 0) = sv < T <= F(bp[n-1]) = sa: find lo with F(bp[lo]) < T <= F(bp[lo+1]) */
        int lo = 0, hi = n - 1;
        while (hi - lo > 1) {
            int mid = (lo + hi) / 2;
            if (F_at(d, v, a, bp[mid]) < T)
                lo = mid;
            else
                hi = mid;
        }
        double flo = F_at(d, v, a, bp[lo]), fhi = F_at(d, v, a, bp[hi]);
        lam = fhi > flo ? bp[lo] + (T - flo) * (bp[hi] - bp[lo]) / (fhi - flo) : bp[hi];
    }
    for (int j = 0; j < d; j++) out[j] = y[j] - sgn(y[j]) * fmin(fmax(lam, v[j]), a[j]);
    free(v);
    free(a);
    free(bp);
}

static double l1norm_d(int d, const double *p) {
    double s = 0;
    for (int j = 0; j < d; j++) s += fabs(p[j]);
    return s;
}

/* p feasible for (x, eps) up to tolerances */
static void check_feasible(int d, const float *x, const double *p, double eps, double tol1,
                           double tolbox, const char *what, int b) {
    double n1 = l1norm_d(d, p);
    ck_assert_msg(n1 <= eps + tol1, "%s sample %d: ||delta||_1 = %.9g > eps %.9g", what, b, n1,
                  eps);
    for (int j = 0; j < d; j++) {
        double z = (double)x[j] + p[j];
        ck_assert_msg(z >= -tolbox && z <= 1 + tolbox, "%s sample %d: x+delta[%d] = %.9g", what, b,
                      j, z);
    }
}

/* Project B rows on the device (in place) and compare with the float64 reference, to within
 * tol * max(1, max |y_j|) per coordinate; ||delta||_1 <= eps to 2 ulps. Returns the device result
 * as doubles (caller frees). */
static double *project_and_compare(env *v, int B, int d, const float *x, const float *y, float eps,
                                   double tol, const char *what) {
    size_t n = (size_t)B * d;
    cl_mem bx = dev_from(&v->ctx, x, n), by = dev_from(&v->ctx, y, n);
    CK(rc_attack_l1_project(&v->ctx, B, d, bx, by, eps, &v->s, E));
    float *got = fmalloc(n);
    download(&v->ctx, by, got, n);
    double *ref = dmalloc((size_t)d), *res = dmalloc(n);
    for (int b = 0; b < B; b++) {
        const size_t o = (size_t)b * d;
        l1_project_ref(d, x + o, y + o, eps, ref);
        /* lambda is a float of the size of the breakpoints |y_j|: allow a few of its ulps */
        double ymax = 1;
        for (int j = 0; j < d; j++) ymax = fmax(ymax, fabsf(y[o + j]));
        const double tol_b = tol * ymax;
        double worst = 0;
        int wj = 0;
        for (int j = 0; j < d; j++) {
            res[o + j] = got[o + j];
            double err = fabs(got[o + j] - ref[j]);
            if (err > worst) worst = err, wj = j;
        }
        ck_assert_msg(worst <= tol_b, "%s (d=%d) sample %d coord %d: device %.9g, reference %.9g",
                      what, d, b, wj, (double)got[o + wj], ref[wj]);
        /* signs kept, magnitudes shrunk: the projection never densifies */
        for (int j = 0; j < d; j++)
            ck_assert_msg(got[o + j] * y[o + j] >= 0 && fabsf(got[o + j]) <= fabsf(y[o + j]),
                          "%s sample %d coord %d: %g from %g", what, b, j, (double)got[o + j],
                          (double)y[o + j]);
        check_feasible(d, x + o, res + o, eps, 2.4e-7 * eps, 1e-6, what, b);
    }
    free(got);
    free(ref);
    clReleaseMemObject(bx);
    clReleaseMemObject(by);
    return res;
}

/* ---- l_inf / l_2 steps and momentum ---------------------------------------------------------- */

static void random_point(unsigned *seed, int B, int d, float *x, float *xa, float *g, float eps,
                         int norm) {
    for (int b = 0; b < B; b++)
        for (int j = 0; j < d; j++) {
            size_t i = (size_t)b * d + j;
            x[i] = face_or_inside(seed, 0.1f, 0.9f);
            float t =
                norm == RC_NORM_LINF ? urand(seed, -eps, eps) : nrand(seed) * eps / sqrtf((float)d);
            xa[i] = fminf(fmaxf(x[i] + t, 0.0f), 1.0f);
            g[i] = urand(seed, 0, 1) < 0.05f ? 0.0f : nrand(seed);
        }
}

START_TEST(linf_step_and_momentum) {
    const int B = 5, d = 700; /* d not a multiple of the 256-coordinate chunk */
    env v;
    env_open(&v, B, d);
    size_t n = (size_t)B * d;
    unsigned seed = 17;
    float *x = fmalloc(n), *xa = fmalloc(n), *g = fmalloc(n), *xo = fmalloc(n), *z = fmalloc(n),
          *m = fmalloc(n), eta[5] = {0.06f, 0.03f, 0.0f, 0.01f, 1.0f};
    const float eps = 8.0f / 255.0f;
    random_point(&seed, B, d, x, xa, g, eps, RC_NORM_LINF);
    for (size_t i = 0; i < n; i++) xo[i] = fminf(fmaxf(xa[i] + urand(&seed, -0.02f, 0.02f), 0), 1);
    cl_mem bx = dev_from(&v.ctx, x, n), bxa = dev_from(&v.ctx, xa, n), bg = dev_from(&v.ctx, g, n),
           bxo = dev_from(&v.ctx, xo, n), beta = dev_from(&v.ctx, eta, B), bz = dev_buf(&v.ctx, n);
    CK(rc_attack_linf_step(&v.ctx, B, d, bx, bxa, bg, beta, eps, bz, E));
    download(&v.ctx, bz, z, n);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < d; j++) {
            size_t i = (size_t)b * d + j;
            float s = g[i] > 0 ? 1.0f : g[i] < 0 ? -1.0f : 0.0f;
            float r = xa[i] + eta[b] * s;
            r = fminf(fmaxf(r, x[i] - eps), x[i] + eps);
            r = fminf(fmaxf(r, 0.0f), 1.0f);
            ck_assert_msg(z[i] == r, "linf step [%d,%d]: %.9g vs %.9g", b, j, (double)z[i],
                          (double)r);
            ck_assert(fabsf(z[i] - x[i]) <= eps * (1 + 1e-6f) && z[i] >= 0 && z[i] <= 1);
        }
    /* momentum written over x_adv_old, as the driver does */
    for (int k = 0; k < 2; k++) {
        const float a = k ? 0.75f : 1.0f;
        upload(&v.ctx, bxo, xo, n);
        CK(rc_attack_momentum(&v.ctx, RC_NORM_LINF, B, d, bx, bxa, bxo, bz, a, eps, NULL, bxo, E));
        download(&v.ctx, bxo, m, n);
        for (size_t i = 0; i < n; i++) {
            float r = xa[i] + (z[i] - xa[i]) * a + (xa[i] - xo[i]) * (1.0f - a);
            r = fminf(fmaxf(r, x[i] - eps), x[i] + eps);
            r = fminf(fmaxf(r, 0.0f), 1.0f);
            ck_assert_msg(m[i] == r, "linf momentum a=%g [%zu]: %.9g vs %.9g", (double)a, i,
                          (double)m[i], (double)r);
            ck_assert(fabsf(m[i] - x[i]) <= eps * (1 + 1e-6f) && m[i] >= 0 && m[i] <= 1);
        }
    }
    free(x), free(xa), free(g), free(xo), free(z), free(m);
    clReleaseMemObject(bx), clReleaseMemObject(bxa), clReleaseMemObject(bg);
    clReleaseMemObject(bxo), clReleaseMemObject(beta), clReleaseMemObject(bz);
    env_close(&v);
}
END_TEST

/* reference radial rescale + clamp of t = p - x onto the eps ball, in float64 */
static void l2_project_ref(int d, const float *x, const double *t, double eps, double *z) {
    double q = 0;
    for (int j = 0; j < d; j++) q += t[j] * t[j];
    double nrm = sqrt(q);
    for (int j = 0; j < d; j++) z[j] = clampd(x[j] + t[j] / (nrm + 1e-12) * fmin(eps, nrm), 0, 1);
}

static void check_l2_ball(int d, const float *x, const float *z, double eps, const char *what,
                          int b) {
    double q = 0;
    for (int j = 0; j < d; j++) {
        ck_assert_msg(z[j] >= 0 && z[j] <= 1 && !isnan(z[j]), "%s [%d,%d] = %g", what, b, j,
                      (double)z[j]);
        q += ((double)z[j] - x[j]) * ((double)z[j] - x[j]);
    }
    ck_assert_msg(sqrt(q) <= eps * (1 + 1e-5), "%s sample %d: ||z-x||_2 = %.9g > %.9g", what, b,
                  sqrt(q), eps);
}

START_TEST(l2_step_and_momentum) {
    const int B = 6, d = 3072;
    env v;
    env_open(&v, B, d);
    size_t n = (size_t)B * d;
    unsigned seed = 23;
    float *x = fmalloc(n), *xa = fmalloc(n), *g = fmalloc(n), *xo = fmalloc(n), *z = fmalloc(n),
          *m = fmalloc(n), eta[6] = {1.0f, 0.5f, 0.01f, 0.0f, 2.0f, 0.25f};
    const float eps = 0.5f;
    random_point(&seed, B, d, x, xa, g, eps, RC_NORM_L2);
    for (int j = 0; j < d; j++) g[(size_t)3 * d + j] = 0.0f; /* sample 3: zero gradient */
    for (size_t i = 0; i < n; i++) xo[i] = fminf(fmaxf(xa[i] + 0.01f * nrand(&seed), 0), 1);
    cl_mem bx = dev_from(&v.ctx, x, n), bxa = dev_from(&v.ctx, xa, n), bg = dev_from(&v.ctx, g, n),
           bxo = dev_from(&v.ctx, xo, n), beta = dev_from(&v.ctx, eta, B), bz = dev_buf(&v.ctx, n);
    CK(rc_attack_l2_step(&v.ctx, B, d, bx, bxa, bg, beta, eps, &v.s, bz, E));
    download(&v.ctx, bz, z, n);
    double *t = dmalloc((size_t)d), *r = dmalloc((size_t)d);
    for (int b = 0; b < B; b++) {
        const size_t o = (size_t)b * d;
        double gq = 0;
        for (int j = 0; j < d; j++) gq += (double)g[o + j] * g[o + j];
        double gn = sqrt(gq);
        for (int j = 0; j < d; j++) t[j] = xa[o + j] + eta[b] * g[o + j] / (gn + 1e-12) - x[o + j];
        l2_project_ref(d, x + o, t, eps, r);
        for (int j = 0; j < d; j++)
            ck_assert_msg(fabs(z[o + j] - r[j]) <= 2e-6, "l2 step [%d,%d]: %.9g vs %.9g", b, j,
                          (double)z[o + j], r[j]);
        check_l2_ball(d, x + o, z + o, eps, "l2 step", b);
    }
    for (int j = 0; j < d; j++) /* zero gradient, zero step: x_adv projected again */
        ck_assert(fabsf(z[(size_t)3 * d + j] - xa[(size_t)3 * d + j]) <= 1e-6f);
    for (int k = 0; k < 2; k++) {
        const float a = k ? 0.75f : 1.0f;
        upload(&v.ctx, bxo, xo, n);
        CK(rc_attack_momentum(&v.ctx, RC_NORM_L2, B, d, bx, bxa, bxo, bz, a, eps, &v.s, bxo, E));
        download(&v.ctx, bxo, m, n);
        for (int b = 0; b < B; b++) {
            const size_t o = (size_t)b * d;
            for (int j = 0; j < d; j++) {
                size_t i = o + j;
                t[j] = (double)xa[i] + ((double)z[i] - xa[i]) * a +
                       ((double)xa[i] - xo[i]) * (1 - a) - x[i];
            }
            l2_project_ref(d, x + o, t, eps, r);
            for (int j = 0; j < d; j++)
                ck_assert_msg(fabs(m[o + j] - r[j]) <= 2e-6, "l2 momentum [%d,%d]: %.9g vs %.9g", b,
                              j, (double)m[o + j], r[j]);
            check_l2_ball(d, x + o, m + o, eps, "l2 momentum", b);
        }
    }
    free(t), free(r);
    free(x), free(xa), free(g), free(xo), free(z), free(m);
    clReleaseMemObject(bx), clReleaseMemObject(bxa), clReleaseMemObject(bg);
    clReleaseMemObject(bxo), clReleaseMemObject(beta), clReleaseMemObject(bz);
    env_close(&v);
}
END_TEST

/* g = 0 everywhere and x_adv = x: every norm is zero; nothing may become NaN. */
START_TEST(l2_zero_gradient_no_nan) {
    const int B = 2, d = 10;
    env v;
    env_open(&v, B, d);
    size_t n = (size_t)B * d;
    float x[20], g[20] = {0}, z[20], eta[2] = {1.0f, 0.0f};
    unsigned seed = 3;
    for (size_t i = 0; i < n; i++) x[i] = urand(&seed, 0, 1);
    cl_mem bx = dev_from(&v.ctx, x, n), bg = dev_from(&v.ctx, g, n),
           beta = dev_from(&v.ctx, eta, B), bz = dev_buf(&v.ctx, n);
    CK(rc_attack_l2_step(&v.ctx, B, d, bx, bx, bg, beta, 0.5f, &v.s, bz, E));
    download(&v.ctx, bz, z, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(z[i] == x[i], "[%zu] %g vs %g", i, (double)z[i], (double)x[i]);
    CK(rc_attack_momentum(&v.ctx, RC_NORM_L2, B, d, bx, bx, bx, bz, 0.75f, 0.5f, &v.s, bz, E));
    download(&v.ctx, bz, z, n);
    for (size_t i = 0; i < n; i++) ck_assert(z[i] == x[i]);
    clReleaseMemObject(bx), clReleaseMemObject(bg), clReleaseMemObject(beta),
        clReleaseMemObject(bz);
    env_close(&v);
}
END_TEST

/* ---- top-k threshold --------------------------------------------------------------------- */

static int cmp_float(const void *p, const void *q) {
    float a = *(const float *)p, b = *(const float *)q;
    return a < b ? -1 : a > b;
}

static void topk_case(int d, int ties) {
    const int B = 12;
    env v;
    env_open(&v, B, d);
    size_t n = (size_t)B * d;
    unsigned seed = 101u + (unsigned)d + 7u * (unsigned)ties;
    float *g = fmalloc(n), *row = fmalloc((size_t)d), tau[12];
    float topk[12] = {0.0f,   1.0f,       0.05f, 0.2f, 0.5f, 0.999f,
                      0.001f, 0.3333333f, 0.95f, 0.0f, 1.0f, 0.1f};
    for (size_t i = 0; i < n; i++) {
        if (ties) /* few distinct magnitudes, both signs, many zeros */
            g[i] = (float)((int)(lcg(&seed) % 7) - 3) * 0.125f;
        else
            g[i] = nrand(&seed) * (urand(&seed, 0, 1) < 0.5f ? 1e-3f : 1.0f);
    }
    if (!ties) /* sample 9: all equal magnitudes; sample 10: all zero */
        for (int j = 0; j < d; j++) {
            g[(size_t)9 * d + j] = j % 2 ? 0.5f : -0.5f;
            g[(size_t)10 * d + j] = j % 3 ? 0.0f : -0.0f;
        }
    cl_mem bg = dev_from(&v.ctx, g, n), bt = dev_from(&v.ctx, topk, B), btau = dev_buf(&v.ctx, B);
    CK(rc_attack_topk_threshold(&v.ctx, B, d, bg, bt, btau, &v.s, E));
    download(&v.ctx, btau, tau, B);
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < d; j++) row[j] = fabsf(g[(size_t)b * d + j]);
        qsort(row, (size_t)d, sizeof *row, cmp_float);
        float t = (1.0f - topk[b]) * (float)d;
        t = fminf(fmaxf(t, 0.0f), (float)(d - 1));
        long idx = (long)t;
        ck_assert_msg(tau[b] == row[idx],
                      "top-k d=%d ties=%d sample %d (topk %g, idx %ld): %.9g vs %.9g", d, ties, b,
                      (double)topk[b], idx, (double)tau[b], (double)row[idx]);
    }
    free(g), free(row);
    clReleaseMemObject(bg), clReleaseMemObject(bt), clReleaseMemObject(btau);
    env_close(&v);
}

START_TEST(topk_threshold) {
    topk_case(1, 0);
    topk_case(5, 0);
    topk_case(784, 0);
    topk_case(3072, 0);
    topk_case(6, 1);
    topk_case(3072, 1);
}
END_TEST

/* ---- l_1 step ---------------------------------------------------------------------------- */

static void l1_step_case(int B, int d, float eps, unsigned seed, float topk_val) {
    env v;
    env_open(&v, B, d);
    size_t n = (size_t)B * d;
    float *x = fmalloc(n), *xa = fmalloc(n), *g = fmalloc(n), *z = fmalloc(n), *eta = fmalloc(B),
          *topk = fmalloc(B), *tau = fmalloc(B), *row = fmalloc((size_t)d);
    for (int b = 0; b < B; b++) {
        eta[b] = b % 3 == 0 ? eps : eps / (1.5f * (float)(b % 3 + 1));
        topk[b] = b == 1 ? 0.0f : b == 2 ? 1.0f : topk_val;
        for (int j = 0; j < d; j++) {
            size_t i = (size_t)b * d + j;
            x[i] = face_or_inside(&seed, 0.15f, 0.85f);
            xa[i] = x[i];
            g[i] = b == 3 && j % 2 ? 0.0f : nrand(&seed);
        }
        if (b >= 4) /* x_adv already perturbed: a sparse point on or inside the l_1 sphere */
            for (int k = 0; k < 8; k++) {
                size_t i = (size_t)b * d + lcg(&seed) % (unsigned)d;
                xa[i] = fminf(fmaxf(x[i] + urand(&seed, -1, 1) * eps / 8, 0), 1);
            }
    }
    cl_mem bx = dev_from(&v.ctx, x, n), bxa = dev_from(&v.ctx, xa, n), bg = dev_from(&v.ctx, g, n),
           beta = dev_from(&v.ctx, eta, B), btk = dev_from(&v.ctx, topk, B),
           btau = dev_buf(&v.ctx, B), bz = dev_buf(&v.ctx, n);
    CK(rc_attack_topk_threshold(&v.ctx, B, d, bg, btk, btau, &v.s, E));
    CK(rc_attack_l1_step(&v.ctx, B, d, bx, bxa, bg, beta, btau, eps, &v.s, bz, E));
    download(&v.ctx, bz, z, n);
    download(&v.ctx, btau, tau, B);
    float *y = fmalloc((size_t)d);
    double *p = dmalloc((size_t)d), *dz = dmalloc((size_t)d);
    for (int b = 0; b < B; b++) {
        const size_t o = (size_t)b * d;
        for (int j = 0; j < d; j++) row[j] = fabsf(g[o + j]);
        qsort(row, (size_t)d, sizeof *row, cmp_float);
        float t = fminf(fmaxf((1.0f - topk[b]) * (float)d, 0.0f), (float)(d - 1));
        ck_assert(tau[b] == row[(long)t]);
        int ns = 0;
        for (int j = 0; j < d; j++) ns += fabsf(g[o + j]) >= tau[b] && g[o + j] != 0;
        if (b == 1) ck_assert_int_eq(ns, 1); /* topk 0: the largest only */
        if (b == 2) ck_assert_int_eq(ns, d); /* topk 1: everything */
        /* reference: u in float64 from the float inputs, then the exact projection */
        for (int j = 0; j < d; j++) {
            double s = fabsf(g[o + j]) >= tau[b] ? sgn(g[o + j]) : 0.0;
            double u = xa[o + j] + eta[b] * s / (ns + 1e-10);
            y[j] = (float)(u - x[o + j]);
        }
        l1_project_ref(d, x + o, y, eps, p);
        double worst = 0;
        for (int j = 0; j < d; j++) {
            double r = clampd(x[o + j] + p[j], 0, 1);
            worst = fmax(worst, fabs(z[o + j] - r));
            dz[j] = (double)z[o + j] - x[o + j];
            ck_assert(z[o + j] >= 0 && z[o + j] <= 1);
        }
        ck_assert_msg(worst <= 2e-6, "l1 step d=%d sample %d: max error %.3g", d, b, worst);
        check_feasible(d, x + o, dz, eps, 1e-6 * eps, 0, "l1 step", b);
    }
    free(y), free(p), free(dz);
    free(x), free(xa), free(g), free(z), free(eta), free(topk), free(tau), free(row);
    clReleaseMemObject(bx), clReleaseMemObject(bxa), clReleaseMemObject(bg);
    clReleaseMemObject(beta), clReleaseMemObject(btk), clReleaseMemObject(btau);
    clReleaseMemObject(bz);
    env_close(&v);
}

START_TEST(l1_step) {
    l1_step_case(8, 3072, 12.0f, 5, 0.05f);
    l1_step_case(8, 3072, 12.0f, 6, 0.2f);
    l1_step_case(8, 784, 10.0f, 7, 0.05f);
    l1_step_case(6, 5, 0.7f, 8, 0.5f);
}
END_TEST

/* ---- l_1 projection ---------------------------------------------------------------------- */

START_TEST(l1_project_random) {
    const int dims[] = {1, 3, 4, 6, 17, 784, 3072};
    for (size_t k = 0; k < sizeof dims / sizeof *dims; k++) {
        const int d = dims[k], B = 10;
        env v;
        env_open(&v, B, d);
        size_t n = (size_t)B * d;
        unsigned seed = 1000u + (unsigned)d;
        float *x = fmalloc(n), *y = fmalloc(n);
        const float eps = d <= 6 ? 0.6f : d < 100 ? 2.0f : 12.0f;
        for (int b = 0; b < B; b++) {
            /* scale: from mostly inside to far outside the ball; sparse for some samples */
            float scale = eps / (float)d * (float)(1 << (b % 5)) * (b % 2 ? 1.0f : 3.0f);
            int sparse = b >= 6;
            for (int j = 0; j < d; j++) {
                size_t i = (size_t)b * d + j;
                x[i] = face_or_inside(&seed, 0.1f, 0.9f);
                y[i] = sparse && urand(&seed, 0, 1) < 0.9f ? 0.0f : nrand(&seed) * scale;
                if (sparse && y[i] != 0) y[i] = nrand(&seed) * eps * 0.3f;
            }
        }
        double *p = project_and_compare(&v, B, d, x, y, eps, 5e-7, "random");
        free(p), free(x), free(y);
        env_close(&v);
    }
}
END_TEST

/* Already inside the ball and the box (including on their boundaries): returned bit for bit. */
START_TEST(l1_project_inside_unchanged) {
    const int B = 6, d = 784;
    env v;
    env_open(&v, B, d);
    size_t n = (size_t)B * d;
    unsigned seed = 77;
    float *x = fmalloc(n), *y = fmalloc(n), *got = fmalloc(n);
    const float eps = 1.0f;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < d; j++) {
            size_t i = (size_t)b * d + j;
            x[i] = urand(&seed, 0.25f, 0.75f);
            y[i] = 0.0f;
            if (b == 0) y[i] = urand(&seed, -1, 1) * 0.9f / (float)d; /* strictly inside */
        }
    /* b=1: ||y||_1 = eps exactly (8 x 0.125), inside the box */
    for (int k = 0; k < 8; k++) y[(size_t)1 * d + 5 * k] = k % 2 ? 0.125f : -0.125f;
    /* b=2: on the box faces, x + y in {0, 1} exactly, ||y||_1 = 0.5 */
    x[(size_t)2 * d + 0] = 0.25f, y[(size_t)2 * d + 0] = -0.25f;
    x[(size_t)2 * d + 1] = 0.75f, y[(size_t)2 * d + 1] = 0.25f;
    /* b=3: all-zero perturbation (also with x on the faces) */
    x[(size_t)3 * d + 0] = 0.0f, x[(size_t)3 * d + 1] = 1.0f;
    /* b=4: both boundaries at once: ||y||_1 = eps and x + y on the faces */
    x[(size_t)4 * d + 0] = 0.5f, y[(size_t)4 * d + 0] = 0.5f;
    x[(size_t)4 * d + 1] = 0.5f, y[(size_t)4 * d + 1] = -0.5f;
    /* b=5: a single coordinate moved all the way, 0 -> 1, with eps = 1 */
    x[(size_t)5 * d + 9] = 0.0f, y[(size_t)5 * d + 9] = 1.0f;
    cl_mem bx = dev_from(&v.ctx, x, n), by = dev_from(&v.ctx, y, n);
    CK(rc_attack_l1_project(&v.ctx, B, d, bx, by, eps, &v.s, E));
    download(&v.ctx, by, got, n);
    ck_assert_msg(memcmp(got, y, n * sizeof(float)) == 0, "a feasible point was changed");
    free(x), free(y), free(got);
    clReleaseMemObject(bx), clReleaseMemObject(by);
    env_close(&v);
}
END_TEST

/* Few distinct values of x and y: many equal breakpoints, v_j = a_j ties, equal magnitudes. */
START_TEST(l1_project_ties) {
    const int dims[] = {4, 6, 784, 3072};
    for (size_t k = 0; k < sizeof dims / sizeof *dims; k++) {
        const int d = dims[k], B = 8;
        env v;
        env_open(&v, B, d);
        size_t n = (size_t)B * d;
        unsigned seed = 31u * (unsigned)d;
        float *x = fmalloc(n), *y = fmalloc(n);
        static const float xs[] = {0.0f, 0.5f, 1.0f, 0.25f};
        static const float ys[] = {-1.0f, -0.5f, -0.25f, 0.0f, 0.25f, 0.5f, 1.0f};
        for (size_t i = 0; i < n; i++) {
            x[i] = xs[lcg(&seed) % 4];
            y[i] = ys[lcg(&seed) % 7];
        }
        for (int b = 0; b < B; b++) {
            const float eps =
                d <= 6 ? 0.25f * (float)(b + 1) : 0.5f * (float)(d / 64) * (float)(b + 1) / 4;
            double *p = project_and_compare(&v, 1, d, x + (size_t)b * d, y + (size_t)b * d, eps,
                                            5e-7, "ties");
            free(p);
        }
        /* every magnitude equal, x in the middle: the projection spreads eps evenly */
        for (int j = 0; j < d; j++) x[j] = 0.5f, y[j] = j % 2 ? 0.4f : -0.4f;
        double *p = project_and_compare(&v, 1, d, x, y, 1.0f, 5e-7, "equal magnitudes");
        for (int j = 0; j < d; j++) ck_assert(fabs(fabs(p[j]) - 1.0 / d) <= 1e-6);
        free(p);
        free(x), free(y);
        env_close(&v);
    }
}
END_TEST

/* Box clipping alone suffices: the result is the plain clip. */
START_TEST(l1_project_box_only) {
    const int B = 3, d = 50;
    env v;
    env_open(&v, B, d);
    size_t n = (size_t)B * d;
    unsigned seed = 5;
    float *x = fmalloc(n), *y = fmalloc(n);
    for (size_t i = 0; i < n; i++) {
        x[i] = urand(&seed, 0, 1);
        y[i] = urand(&seed, -1.5f, 1.5f) * (i % 5 == 0);
    }
    double *p = project_and_compare(&v, B, d, x, y, 1000.0f, 1e-7, "box only");
    for (size_t i = 0; i < n; i++) {
        double c = clampd((double)x[i] + y[i], 0, 1) - x[i];
        ck_assert_msg(fabs(p[i] - c) <= 1e-7, "[%zu] %g vs clip %g", i, p[i], c);
    }
    free(p), free(x), free(y);
    env_close(&v);
}
END_TEST

/* Small d: p is the nearest feasible point. The feasible set is a polytope, so p (feasible) is
 * the projection iff <y - p, q - p> <= 0 for all its vertices q. Candidates: every point whose
 * coordinates are each a box bound or 0, and those with one free coordinate on the l_1 sphere
 * (a superset of the vertices, all feasible ones kept). Then random feasible points. */
static int feasible(int d, const double *q, const float *x, double eps) {
    if (l1norm_d(d, q) > eps * (1 + 1e-12)) return 0;
    for (int j = 0; j < d; j++)
        if (x[j] + q[j] < -1e-12 || x[j] + q[j] > 1 + 1e-12) return 0;
    return 1;
}

static double dist2(int d, const double *a, const float *y) {
    double s = 0;
    for (int j = 0; j < d; j++) s += (a[j] - y[j]) * (a[j] - y[j]);
    return s;
}

static void check_optimal(int d, const float *x, const float *y, const double *p, double eps,
                          unsigned *seed) {
    double q[8], best = dist2(d, p, y);
    int count = 0;
    int total = 1;
    for (int j = 0; j < d; j++) total *= 3;
    for (int free_k = -1; free_k < d; free_k++)
        for (int code = 0; code < total; code++) {
            int c = code;
            double used = 0;
            for (int j = 0; j < d; j++, c /= 3) {
                q[j] = c % 3 == 0 ? -(double)x[j] : c % 3 == 1 ? 0.0 : 1.0 - x[j];
                if (j != free_k) used += fabs(q[j]);
            }
            for (int sgnk = -1; sgnk <= 1; sgnk += 2) {
                if (free_k >= 0) {
                    if (used > eps) break;
                    q[free_k] = sgnk * (eps - used);
                }
                if (!feasible(d, q, x, eps)) continue;
                count++;
                double ip = 0;
                for (int j = 0; j < d; j++) ip += ((double)y[j] - p[j]) * (q[j] - p[j]);
                ck_assert_msg(ip <= 1e-5, "d=%d: vertex with <y-p, q-p> = %.3g > 0", d, ip);
                ck_assert_msg(dist2(d, q, y) >= best - 1e-5, "d=%d: a vertex is closer", d);
                if (free_k < 0) break;
            }
        }
    ck_assert(count > 0);
    /* random feasible points: uniform in the box, scaled into the ball; and points near p */
    for (int t = 0; t < 20000; t++) {
        for (int j = 0; j < d; j++) {
            if (t % 2)
                q[j] = urand(seed, -x[j], 1.0f - x[j]);
            else
                q[j] = clampd(p[j] + urand(seed, -1e-3f, 1e-3f), -x[j], 1.0 - x[j]);
        }
        double n1 = l1norm_d(d, q);
        if (n1 > eps)
            for (int j = 0; j < d; j++) q[j] *= eps / n1;
        ck_assert_msg(dist2(d, q, y) >= best - 1e-5,
                      "d=%d: a random feasible point is closer (%.9g < %.9g)", d, dist2(d, q, y),
                      best);
    }
}

START_TEST(l1_project_nearest_small_d) {
    const int B = 40;
    for (int d = 3; d <= 6; d++) {
        env v;
        env_open(&v, B, d);
        size_t n = (size_t)B * d;
        unsigned seed = 900u + (unsigned)d;
        float *x = fmalloc(n), *y = fmalloc(n);
        for (size_t i = 0; i < n; i++) {
            x[i] = face_or_inside(&seed, 0.15f, 0.85f);
            y[i] = urand(&seed, 0, 1) < 0.2f ? 0.0f : urand(&seed, -1.2f, 1.2f);
        }
        for (int b = 0; b < B; b++) {
            const float eps = 0.1f + 0.05f * (float)b;
            double *p = project_and_compare(&v, 1, d, x + (size_t)b * d, y + (size_t)b * d, eps,
                                            5e-7, "small d");
            check_optimal(d, x + (size_t)b * d, y + (size_t)b * d, p, eps, &seed);
            free(p);
        }
        free(x), free(y);
        env_close(&v);
    }
}
END_TEST

/* ---- l_0 --------------------------------------------------------------------------------- */

START_TEST(l0_count) {
    const int B = 7, d = 1000;
    env v;
    env_open(&v, B, d);
    size_t n = (size_t)B * d;
    unsigned seed = 41;
    float *a = fmalloc(n), *b = fmalloc(n), out[7];
    int want[7] = {0};
    for (int s = 0; s < B; s++)
        for (int j = 0; j < d; j++) {
            size_t i = (size_t)s * d + j;
            a[i] = urand(&seed, 0, 1);
            b[i] = urand(&seed, 0, 1) < 0.1f * s ? a[i] + 1e-3f : a[i];
            if (s == 6) b[i] = j % 2 ? -0.0f : 0.0f, a[i] = 0.0f; /* -0 == +0 */
            want[s] += a[i] != b[i];
        }
    cl_mem ba = dev_from(&v.ctx, a, n), bb = dev_from(&v.ctx, b, n), bo = dev_buf(&v.ctx, B);
    CK(rc_attack_l0(&v.ctx, B, d, ba, bb, bo, E));
    download(&v.ctx, bo, out, B);
    for (int s = 0; s < B; s++)
        ck_assert_msg(out[s] == (float)want[s], "sample %d: %g vs %d", s, (double)out[s], want[s]);
    ck_assert(out[0] == 0 && out[6] == 0);
    free(a), free(b);
    clReleaseMemObject(ba), clReleaseMemObject(bb), clReleaseMemObject(bo);
    env_close(&v);
}
END_TEST

/* ---- determinism, scratch bounds ----------------------------------------------------------- */

START_TEST(deterministic) {
    const int B = 16, d = 3072;
    env v;
    env_open(&v, B, d);
    size_t n = (size_t)B * d;
    unsigned seed = 99;
    float *x = fmalloc(n), *xa = fmalloc(n), *g = fmalloc(n), *r[2], eta[16], topk[16];
    for (int k = 0; k < 2; k++) r[k] = fmalloc(4 * n + 2 * (size_t)B);
    random_point(&seed, B, d, x, xa, g, 0.5f, RC_NORM_L2);
    for (int b = 0; b < B; b++) eta[b] = 0.1f * (float)(b + 1), topk[b] = 0.05f * (float)(b % 5);
    cl_mem bx = dev_from(&v.ctx, x, n), bxa = dev_from(&v.ctx, xa, n), bg = dev_from(&v.ctx, g, n),
           beta = dev_from(&v.ctx, eta, B), btk = dev_from(&v.ctx, topk, B),
           btau = dev_buf(&v.ctx, B), bz = dev_buf(&v.ctx, n), bl0 = dev_buf(&v.ctx, B);
    for (int k = 0; k < 2; k++) {
        float *o = r[k];
        CK(rc_attack_l2_step(&v.ctx, B, d, bx, bxa, bg, beta, 0.5f, &v.s, bz, E));
        download(&v.ctx, bz, o, n);
        CK(rc_attack_momentum(&v.ctx, RC_NORM_L2, B, d, bx, bxa, bxa, bz, 0.75f, 0.5f, &v.s, bz,
                              E));
        download(&v.ctx, bz, o + n, n);
        CK(rc_attack_topk_threshold(&v.ctx, B, d, bg, btk, btau, &v.s, E));
        CK(rc_attack_l1_step(&v.ctx, B, d, bx, bxa, bg, beta, btau, 12.0f, &v.s, bz, E));
        download(&v.ctx, bz, o + 2 * n, n);
        download(&v.ctx, btau, o + 4 * n, B);
        upload(&v.ctx, bz, g, n);
        CK(rc_attack_l1_project(&v.ctx, B, d, bx, bz, 12.0f, &v.s, E));
        download(&v.ctx, bz, o + 3 * n, n);
        CK(rc_attack_l0(&v.ctx, B, d, bx, bxa, bl0, E));
        download(&v.ctx, bl0, o + 4 * n + B, B);
    }
    ck_assert_msg(memcmp(r[0], r[1], (4 * n + 2 * (size_t)B) * sizeof(float)) == 0,
                  "two runs differ");
    free(x), free(xa), free(g), free(r[0]), free(r[1]);
    clReleaseMemObject(bx), clReleaseMemObject(bxa), clReleaseMemObject(bg);
    clReleaseMemObject(beta), clReleaseMemObject(btk), clReleaseMemObject(btau);
    clReleaseMemObject(bz), clReleaseMemObject(bl0);
    env_close(&v);
}
END_TEST

/* The same inputs with the work-group size forced to 1, 16 and the default (each in its own
 * context, set before the first launch): the reducing kernels (per-sample work-groups on the GPU
 * class) give bit-identical results. On the CPU class, which reduces per work-item, this holds
 * trivially. */
START_TEST(group_size_independent) {
    const int B = 6, d = 1000; /* a row of several lanes' worth, not a multiple of 256 */
    const size_t n = (size_t)B * d, per_run = 3 * n + 2 * (size_t)B;
    unsigned seed = 123;
    float *x = fmalloc(n), *xa = fmalloc(n), *g = fmalloc(n), *y = fmalloc(n), *r[3];
    float eta[6], topk[6];
    random_point(&seed, B, d, x, xa, g, 0.5f, RC_NORM_L2);
    for (size_t i = 0; i < n; i++) y[i] = nrand(&seed) * 0.05f; /* ||y||_1 ~ 40 > eps */
    for (int b = 0; b < B; b++) eta[b] = 0.5f * (float)(b + 1), topk[b] = 0.1f * (float)b;
    static const unsigned sizes[3] = {1, 16, 0};
    for (int k = 0; k < 3; k++) {
        env v;
        test_open_ctx(&v.ctx);
        v.ctx.testing.group_size = sizes[k]; /* before the first launch */
        CK(rc_attack_scratch_alloc(&v.ctx, &v.s, B, d, E));
        float *o = r[k] = fmalloc(per_run);
        cl_mem bx = dev_from(&v.ctx, x, n), bxa = dev_from(&v.ctx, xa, n),
               bg = dev_from(&v.ctx, g, n), by = dev_from(&v.ctx, y, n),
               beta = dev_from(&v.ctx, eta, B), btk = dev_from(&v.ctx, topk, B),
               btau = dev_buf(&v.ctx, B), bz = dev_buf(&v.ctx, n), bl0 = dev_buf(&v.ctx, B);
        CK(rc_attack_topk_threshold(&v.ctx, B, d, bg, btk, btau, &v.s, E));
        CK(rc_attack_l1_step(&v.ctx, B, d, bx, bxa, bg, beta, btau, 4.0f, &v.s, bz, E));
        download(&v.ctx, bz, o, n);
        download(&v.ctx, btau, o + 3 * n, B);
        CK(rc_attack_l1_project(&v.ctx, B, d, bx, by, 4.0f, &v.s, E));
        download(&v.ctx, by, o + n, n);
        CK(rc_attack_l2_step(&v.ctx, B, d, bx, bxa, bg, beta, 0.5f, &v.s, bz, E));
        download(&v.ctx, bz, o + 2 * n, n);
        CK(rc_attack_l0(&v.ctx, B, d, bz, bxa, bl0, E));
        download(&v.ctx, bl0, o + 3 * n + B, B);
        clReleaseMemObject(bx), clReleaseMemObject(bxa), clReleaseMemObject(bg);
        clReleaseMemObject(by), clReleaseMemObject(beta), clReleaseMemObject(btk);
        clReleaseMemObject(btau), clReleaseMemObject(bz), clReleaseMemObject(bl0);
        env_close(&v);
    }
    static const char *what[4] = {"l1 step", "l1 projection", "l2 step", "top-k threshold, l0"};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < per_run; i++)
            ck_assert_msg(memcmp(&r[k][i], &r[2][i], sizeof(float)) == 0,
                          "%s [%zu]: %.9g with work-groups of %u, %.9g by default", what[i / n],
                          i % n, (double)r[k][i], sizes[k], (double)r[2][i]);
    free(x), free(xa), free(g), free(y), free(r[0]), free(r[1]), free(r[2]);
}
END_TEST

START_TEST(scratch_bounds) {
    env v;
    env_open(&v, 4, 100);
    cl_mem b = dev_buf(&v.ctx, 1000);
    rc_err e;
    ck_assert_int_eq(rc_attack_l1_project(&v.ctx, 5, 100, b, b, 1.0f, &v.s, &e), -1);
    ck_assert(strstr(e.msg, "exceeds") != NULL);
    ck_assert_int_eq(rc_attack_l2_step(&v.ctx, 4, 101, b, b, b, b, 1.0f, &v.s, b, &e), -1);
    ck_assert_int_eq(rc_attack_momentum(&v.ctx, RC_NORM_L1, 4, 100, b, b, b, b, 1, 1, &v.s, b, &e),
                     -1);
    /* smaller shapes reuse the scratch */
    CK(rc_fill(&v.ctx, b, 0, 1000, 0.25f, E));
    CK(rc_attack_l1_project(&v.ctx, 2, 50, b, b, 1.0f, &v.s, E));
    finish(&v.ctx);
    clReleaseMemObject(b);
    env_close(&v);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("attack_ops");
    TCase *tc = tcase_create("attack_ops");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, linf_step_and_momentum);
    tcase_add_test(tc, l2_step_and_momentum);
    tcase_add_test(tc, l2_zero_gradient_no_nan);
    tcase_add_test(tc, topk_threshold);
    tcase_add_test(tc, l1_step);
    tcase_add_test(tc, l1_project_random);
    tcase_add_test(tc, l1_project_inside_unchanged);
    tcase_add_test(tc, l1_project_ties);
    tcase_add_test(tc, l1_project_box_only);
    tcase_add_test(tc, l1_project_nearest_small_d);
    tcase_add_test(tc, l0_count);
    tcase_add_test(tc, deterministic);
    tcase_add_test(tc, group_size_independent);
    tcase_add_test(tc, scratch_bounds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(suite()); }
