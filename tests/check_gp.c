/* Gradient projection: the merge against a float64 host reference over tensors of many sizes in
 * both arenas (a large multi-chunk one, a 1-element one, a zero adversarial delta, negative and
 * positive cosines, an empty one, gaps that must stay untouched), beta = 0 and 1, accuracy on a
 * 2.4M-float tensor, bit-exact snapshots, bit-identical repeated runs and work-group sizes, and
 * refused tables. */
#include "testutil.h"
#include "ramp/gp.h"
#include "ramp/launch.h"

#include <math.h>
#include <stdint.h>

enum { K_RANDOM, K_POS, K_NEG, K_ZERO_ADV };
enum { OLD_P, ADV_P, NAT_P, OLD_S, ADV_S, NAT_S };

typedef struct gp_layout {
    int arena;
    size_t gap, numel;
    int kind;
} gp_layout;

typedef struct gp_case {
    size_t np, ns;
    float *h[6];
    rc_gp_tensor t[16];
    int kind[16];
    int nt;
} gp_case;

static uint64_t rng_state;
static double xrand(void) { /* U[0, 1) */
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static double srand1(void) { return 2 * xrand() - 1; } /* U[-1, 1) */

/* Lay the tensors out (gaps before each), fill old everywhere; in the gaps adv and nat hold
 * markers that the merge must leave alone. */
static void case_build(gp_case *c, const gp_layout *l, int n, uint64_t seed) {
    memset(c, 0, sizeof *c);
    rng_state = seed;
    size_t end[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        end[l[i].arena] += l[i].gap;
        c->t[i] = (rc_gp_tensor){.offset = end[l[i].arena], .numel = l[i].numel,
                                 .arena = l[i].arena};
        c->kind[i] = l[i].kind;
        end[l[i].arena] += l[i].numel;
    }
    c->nt = n;
    c->np = end[0] + 3; /* trailing gap */
    c->ns = end[1];
    for (int a = 0; a < 6; a++) {
        size_t len = a < 3 ? c->np : c->ns;
        c->h[a] = malloc((len ? len : 1) * sizeof(float));
        ck_assert(c->h[a] != NULL);
    }
    for (int arena = 0; arena < 2; arena++) {
        size_t len = arena ? c->ns : c->np;
        float *o = c->h[3 * arena], *a = c->h[3 * arena + 1], *nt = c->h[3 * arena + 2];
        for (size_t i = 0; i < len; i++) {
            /* running_var-like values in the state arena stay positive */
            o[i] = (float)(arena ? 1.0 + 0.5 * xrand() : srand1());
            a[i] = 1234.5f, nt[i] = -777.25f; /* gap markers */
        }
    }
    for (int i = 0; i < n; i++) {
        float *o = c->h[3 * c->t[i].arena] + c->t[i].offset;
        float *a = c->h[3 * c->t[i].arena + 1] + c->t[i].offset;
        float *nt = c->h[3 * c->t[i].arena + 2] + c->t[i].offset;
        double s = 1e-2 * (1 + i); /* delta scale differs per tensor */
        for (size_t j = 0; j < c->t[i].numel; j++) {
            double ga = s * srand1(), noise = s * srand1(), gn;
            switch (c->kind[i]) {
            case K_POS: gn = 0.8 * ga + 0.5 * noise; break;
            case K_NEG: gn = -0.8 * ga + 0.5 * noise; break;
            case K_ZERO_ADV: ga = 0, gn = noise; break;
            default: gn = noise;
            }
            a[j] = (float)(o[j] + ga);
            nt[j] = (float)(o[j] + gn);
        }
    }
}

static void case_free(gp_case *c) {
    for (int a = 0; a < 6; a++) free(c->h[a]);
}

/* The float64 reference: expected arenas (adv outside the tensors) and cosines. */
static void reference(const gp_case *c, double beta, double *new_p, double *new_s, double *cs) {
    for (size_t i = 0; i < c->np; i++) new_p[i] = c->h[ADV_P][i];
    for (size_t i = 0; i < c->ns; i++) new_s[i] = c->h[ADV_S][i];
    for (int t = 0; t < c->nt; t++) {
        const rc_gp_tensor *g = &c->t[t];
        const float *o = c->h[3 * g->arena] + g->offset, *a = c->h[3 * g->arena + 1] + g->offset,
                    *n = c->h[3 * g->arena + 2] + g->offset;
        double *out = (g->arena ? new_s : new_p) + g->offset;
        double dot = 0, aa = 0, nn = 0;
        for (size_t j = 0; j < g->numel; j++) {
            double ga = (double)a[j] - o[j], gn = (double)n[j] - o[j];
            dot += ga * gn, aa += ga * ga, nn += gn * gn;
        }
        cs[t] = dot / (fmax(sqrt(aa), 1e-8) * fmax(sqrt(nn), 1e-8));
        double w = cs[t] > 0 ? (1 - beta) * cs[t] : 0;
        for (size_t j = 0; j < g->numel; j++) {
            double ga = (double)a[j] - o[j], gn = (double)n[j] - o[j];
            out[j] = o[j] + beta * ga + w * gn;
        }
    }
}

typedef struct gp_dev {
    cl_mem b[6];
    rc_gp_snapshot snap;
} gp_dev;

/* Upload the arenas and snapshot old; then scribble over the old buffers so that the merge can
 * only have read the snapshot. */
static void dev_upload(rc_ctx *ctx, const gp_case *c, gp_dev *d) {
    rc_err e;
    for (int a = 0; a < 6; a++) {
        size_t bytes = (a < 3 ? c->np : c->ns) * sizeof(float);
        d->b[a] = NULL;
        if (!bytes) continue;
        d->b[a] = dev_from_bytes(ctx, c->h[a], bytes);
    }
    ck_assert_msg(rc_gp_snapshot_alloc(ctx, &d->snap, c->np, c->ns, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_gp_snapshot_take(ctx, &d->snap, d->b[OLD_P], d->b[OLD_S], &e) == 0, "%s",
                  e.msg);
    ck_assert(rc_fill(ctx, d->b[OLD_P], 0, c->np, 99.0f, &e) == 0);
    if (c->ns) ck_assert(rc_fill(ctx, d->b[OLD_S], 0, c->ns, 99.0f, &e) == 0);
}

static void dev_free(gp_dev *d) {
    for (int a = 0; a < 6; a++)
        if (d->b[a]) clReleaseMemObject(d->b[a]);
    rc_gp_snapshot_free(&d->snap);
}

/* Reset adv to the case's values, merge, read the merged arenas back. */
static void dev_merge(rc_ctx *ctx, const gp_case *c, gp_dev *d, float beta, float *out_p,
                      float *out_s, double *cs) {
    rc_err e;
    upload(ctx, d->b[ADV_P], c->h[ADV_P], c->np);
    if (c->ns) upload(ctx, d->b[ADV_S], c->h[ADV_S], c->ns);
    ck_assert_msg(rc_gp_merge(ctx, &d->snap, d->b[ADV_P], d->b[ADV_S], d->b[NAT_P], d->b[NAT_S],
                              c->t, c->nt, beta, cs, &e) == 0,
                  "%s", e.msg);
    download(ctx, d->b[ADV_P], out_p, c->np);
    if (c->ns) download(ctx, d->b[ADV_S], out_s, c->ns);
}

/* got vs the reference, elementwise, at ~1e-6 relative to the size of the terms involved. */
static void compare(const gp_case *c, double beta, const float *got_p, const float *got_s,
                    const double *cs) {
    double *ref_p = malloc(c->np * sizeof(double)), *ref_s = malloc((c->ns + 1) * sizeof(double));
    double ref_cos[16];
    reference(c, beta, ref_p, ref_s, ref_cos);
    for (int t = 0; t < c->nt; t++)
        ck_assert_msg(fabs(cs[t] - ref_cos[t]) <= 1e-7, "tensor %d: cos %.9g, reference %.9g", t,
                      cs[t], ref_cos[t]);
    for (int arena = 0; arena < 2; arena++) {
        size_t len = arena ? c->ns : c->np;
        const float *got = arena ? got_s : got_p, *o = c->h[3 * arena], *a = c->h[3 * arena + 1],
                    *n = c->h[3 * arena + 2];
        const double *ref = arena ? ref_s : ref_p;
        for (size_t i = 0; i < len; i++) {
            double tol =
                1e-6 * (fabs(o[i]) + fabs((double)a[i] - o[i]) + fabs((double)n[i] - o[i]));
            ck_assert_msg(fabs(got[i] - ref[i]) <= tol, "arena %d float %zu: %.9g, reference %.9g",
                          arena, i, got[i], ref[i]);
        }
    }
    free(ref_p);
    free(ref_s);
}

static const gp_layout mixed[] = {
    {0, 3, 100003, K_POS},  /* large: 13 chunks, the last one partial */
    {0, 5, 1, K_RANDOM},    /* one element: cos is +-1 */
    {0, 0, 777, K_ZERO_ADV},
    {0, 2, 500, K_NEG},
    {0, 0, 300, K_POS},
    {0, 4, 0, K_POS},       /* empty */
    {0, 0, 4096, K_RANDOM},
    {1, 0, 64, K_POS},      /* BN running_mean / running_var in the state arena */
    {1, 2, 64, K_NEG},
    {1, 0, 33, K_ZERO_ADV},
};
#define N_MIXED ((int)(sizeof mixed / sizeof *mixed))

/* One test's device, case, device arenas and merged output. */
typedef struct gp_test {
    rc_ctx ctx;
    gp_case c;
    gp_dev d;
    float *p, *s; /* the merged arenas */
    double cs[16];
} gp_test;

static void gpt_open(gp_test *t, const gp_layout *l, int n, uint64_t seed) {
    test_open_ctx(&t->ctx);
    case_build(&t->c, l, n, seed);
}

/* Upload the case (after any change to its host values). */
static void gpt_upload(gp_test *t) {
    dev_upload(&t->ctx, &t->c, &t->d);
    t->p = malloc((t->c.np ? t->c.np : 1) * 4);
    t->s = malloc((t->c.ns ? t->c.ns : 1) * 4);
    ck_assert(t->p && t->s);
}

/* Merge with beta (as a float on the device) and compare with the reference. */
static void gpt_merge(gp_test *t, double beta) {
    dev_merge(&t->ctx, &t->c, &t->d, (float)beta, t->p, t->s, t->cs);
    compare(&t->c, beta, t->p, t->s, t->cs);
}

static void gpt_close(gp_test *t) {
    free(t->p);
    free(t->s);
    dev_free(&t->d);
    case_free(&t->c);
    rc_ctx_close(&t->ctx);
}


START_TEST(merge_matches_reference) {
    gp_test t;
    gpt_open(&t, mixed, N_MIXED, 0x9e3779b97f4a7c15ull);
    gpt_upload(&t);
    gpt_merge(&t, 0.5);
    const gp_case *c = &t.c;
    const double *cs = t.cs;
    /* the cases are what they claim to be */
    ck_assert_msg(cs[0] > 0.5 && cs[4] > 0.5 && cs[7] > 0.5, "%g %g %g", cs[0], cs[4], cs[7]);
    ck_assert_msg(cs[3] < -0.5 && cs[8] < -0.5, "%g %g", cs[3], cs[8]);
    ck_assert_msg(fabs(fabs(cs[1]) - 1) < 1e-6, "one element: cos %g", cs[1]);
    ck_assert(cs[2] == 0 && cs[9] == 0 && cs[5] == 0);
    /* a zero adversarial delta leaves theta_old exactly */
    for (size_t j = 0; j < c->t[2].numel; j++)
        ck_assert(t.p[c->t[2].offset + j] == c->h[OLD_P][c->t[2].offset + j]);
    /* negative cosine: the natural delta is dropped, theta_new = theta_old + beta * g_a */
    const int neg[2] = {3, 8};
    for (int k = 0; k < 2; k++) {
        const rc_gp_tensor *g = &c->t[neg[k]];
        const float *got = (g->arena ? t.s : t.p) + g->offset, *o = c->h[3 * g->arena] + g->offset,
                    *a = c->h[3 * g->arena + 1] + g->offset;
        for (size_t j = 0; j < g->numel; j++) {
            double want = o[j] + 0.5 * ((double)a[j] - o[j]);
            ck_assert_msg(fabs(got[j] - want) <= 2e-7 * (fabs(o[j]) + fabs(a[j])),
                          "tensor %d float %zu: %.9g, want %.9g", neg[k], j, got[j], want);
        }
    }
    gpt_close(&t);
}
END_TEST

START_TEST(beta_edges) {
    gp_test t;
    gpt_open(&t, mixed, N_MIXED, 42);
    gpt_upload(&t);
    const gp_case *c = &t.c;
    const float *p = t.p, *s = t.s;
    /* beta = 1: the adversarial model, whatever the cosine */
    gpt_merge(&t, 1.0);
    for (size_t i = 0; i < c->np; i++)
        ck_assert_msg(fabs(p[i] - c->h[ADV_P][i]) <=
                          2e-7 * (fabs(c->h[OLD_P][i]) + fabs(c->h[ADV_P][i])),
                      "float %zu: %.9g, adv %.9g", i, p[i], c->h[ADV_P][i]);
    for (size_t i = 0; i < c->ns; i++)
        ck_assert(fabs(s[i] - c->h[ADV_S][i]) <=
                  2e-7 * (fabs(c->h[OLD_S][i]) + fabs(c->h[ADV_S][i])));
    /* beta = 0: theta_old plus the cos-scaled natural delta where cos > 0, else theta_old */
    gpt_merge(&t, 0.0);
    const rc_gp_tensor *g = &c->t[3]; /* negative cosine */
    for (size_t j = 0; j < g->numel; j++)
        ck_assert(p[g->offset + j] == c->h[OLD_P][g->offset + j]);
    gpt_close(&t);
}
END_TEST

/* Deltas with a common sign over 2.4M floats, where a plain float running sum loses digits. */
START_TEST(accurate_on_large_tensor) {
    const gp_layout l[] = {{0, 0, 2400000, K_POS}, {0, 1, 2400001, K_NEG}};
    gp_test t;
    gpt_open(&t, l, 2, 7);
    /* shift the first tensor's deltas to one sign: large sums of same-signed terms */
    for (size_t j = 0; j < t.c.t[0].numel; j++) {
        t.c.h[ADV_P][j] = (float)(t.c.h[ADV_P][j] + 0.03);
        t.c.h[NAT_P][j] = (float)(t.c.h[NAT_P][j] + 0.02);
    }
    gpt_upload(&t);
    gpt_merge(&t, 0.3);
    gpt_close(&t);
}
END_TEST

/* Tiny deltas: PyTorch (>= 1.12) clamps each norm at eps = 1e-8 separately. With max(|a| |b|, eps)
 * instead, A would give 1.5e-9 and B 0.01. */
START_TEST(eps_clamps_each_norm) {
    const gp_layout l[] = {{0, 0, 1, K_RANDOM}, {0, 0, 2, K_RANDOM}, {0, 0, 2, K_ZERO_ADV}};
    gp_test t;
    gpt_open(&t, l, 3, 11);
    float **h = t.c.h;
    for (size_t i = 0; i < t.c.np; i++) h[OLD_P][i] = 0, h[ADV_P][i] = 0, h[NAT_P][i] = 0;
    h[ADV_P][0] = 5e-9f, h[NAT_P][0] = 3e-9f;   /* A: both norms below eps */
    h[ADV_P][1] = 1e-5f, h[NAT_P][1] = 1e-5f;   /* B: |a| |b| = 1.4e-10 < eps, each > eps */
    h[NAT_P][2] = 1e-5f;
    h[NAT_P][3] = 1e-5f, h[NAT_P][4] = -2e-5f; /* C: zero adversarial delta */
    gpt_upload(&t);
    gpt_merge(&t, 0.5);
    ck_assert_msg(fabs(t.cs[0] - (double)5e-9f * 3e-9f / 1e-16) < 1e-6, "A: cos %.9g", t.cs[0]);
    ck_assert_msg(fabs(t.cs[1] - sqrt(0.5)) < 1e-6, "B: cos %.9g", t.cs[1]);
    ck_assert(t.cs[2] == 0);
    gpt_close(&t);
}
END_TEST

START_TEST(repeated_merges_are_bit_identical) {
    gp_test t;
    gpt_open(&t, mixed, N_MIXED, 2024);
    gpt_upload(&t);
    const gp_case *c = &t.c;
    float *p2 = malloc(c->np * 4), *s2 = malloc(c->ns * 4);
    double cs2[16];
    dev_merge(&t.ctx, c, &t.d, 0.5f, t.p, t.s, t.cs);
    dev_merge(&t.ctx, c, &t.d, 0.5f, p2, s2, cs2);
    ck_assert(memcmp(t.p, p2, c->np * 4) == 0);
    ck_assert(memcmp(t.s, s2, c->ns * 4) == 0);
    ck_assert(memcmp(t.cs, cs2, (size_t)c->nt * sizeof(double)) == 0);
    free(p2), free(s2);
    gpt_close(&t);
}
END_TEST

/* The merge's sums and update do not depend on the work-group size (GPU class; the CPU class
 * runs a work-item per chunk): sizes 1, 16 and the default give bit-identical cosines and arenas,
 * in contexts of their own. The first tensor has more chunks than a group has lanes. */
START_TEST(merge_ignores_group_size) {
    static const gp_layout l[] = {
        {0, 0, 2200001, K_POS}, /* 269 chunks */
        {0, 3, 8193, K_NEG},    {0, 1, 1, K_RANDOM}, {1, 0, 300, K_POS}, {1, 2, 33, K_ZERO_ADV},
    };
    const unsigned sizes[3] = {1, 16, 0};
    float *p[3], *s[3];
    double cs[3][16];
    size_t np = 0, ns = 0;
    for (int r = 0; r < 3; r++) {
        gp_test t;
        gpt_open(&t, l, 5, 314159);
        t.ctx.testing.group_size = sizes[r];
        gpt_upload(&t);
        gpt_merge(&t, 0.4);
        np = t.c.np, ns = t.c.ns;
        p[r] = t.p, s[r] = t.s, t.p = t.s = NULL;
        memcpy(cs[r], t.cs, sizeof cs[r]);
        gpt_close(&t);
    }
    for (int r = 1; r < 3; r++) {
        ck_assert_msg(memcmp(cs[0], cs[r], 5 * sizeof(double)) == 0, "cosines, group size %u",
                      sizes[r]);
        ck_assert_msg(memcmp(p[0], p[r], np * 4) == 0, "parameters, group size %u", sizes[r]);
        ck_assert_msg(memcmp(s[0], s[r], ns * 4) == 0, "BN state, group size %u", sizes[r]);
    }
    for (int r = 0; r < 3; r++) free(p[r]), free(s[r]);
}
END_TEST

/* Any bit pattern (NaNs included) survives take then restore; a later change to the arena does
 * not reach the snapshot. Also with no state arena. */
START_TEST(snapshot_round_trip_is_bit_exact) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_err e;
    const size_t np = 10007, ns = 130;
    uint32_t *hp = malloc(np * 4), *hs = malloc(ns * 4), *back = malloc(np * 4);
    rng_state = 99;
    for (size_t i = 0; i < np; i++) hp[i] = (uint32_t)(xrand() * 4294967296.0);
    for (size_t i = 0; i < ns; i++) hs[i] = (uint32_t)(xrand() * 4294967296.0);
    hp[0] = 0x7fc00001u, hp[1] = 0xff800000u, hp[2] = 0x80000000u; /* NaN payload, -inf, -0 */
    cl_mem bp = dev_from_bytes(&ctx, hp, np * 4), bs = dev_from_bytes(&ctx, hs, ns * 4);
    rc_gp_snapshot snap;
    ck_assert_msg(rc_gp_snapshot_alloc(&ctx, &snap, np, ns, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_gp_snapshot_take(&ctx, &snap, bp, bs, &e) == 0, "%s", e.msg);
    ck_assert(rc_fill(&ctx, bp, 0, np, 3.0f, &e) == 0);
    ck_assert(rc_fill(&ctx, bs, 0, ns, 3.0f, &e) == 0);
    download_bytes(&ctx, snap.params, back, np * 4);
    ck_assert(memcmp(back, hp, np * 4) == 0);
    ck_assert_msg(rc_gp_snapshot_restore(&ctx, &snap, bp, bs, &e) == 0, "%s", e.msg);
    download_bytes(&ctx, bp, back, np * 4);
    ck_assert(memcmp(back, hp, np * 4) == 0);
    download_bytes(&ctx, bs, back, ns * 4);
    ck_assert(memcmp(back, hs, ns * 4) == 0);
    rc_gp_snapshot_free(&snap);
    rc_gp_snapshot_free(&snap); /* twice is harmless */
    /* no BN state */
    ck_assert_msg(rc_gp_snapshot_alloc(&ctx, &snap, np, 0, &e) == 0, "%s", e.msg);
    ck_assert(snap.state == NULL);
    upload_bytes(&ctx, bp, hp, np * 4);
    ck_assert_msg(rc_gp_snapshot_take(&ctx, &snap, bp, NULL, &e) == 0, "%s", e.msg);
    ck_assert(rc_fill(&ctx, bp, 0, np, 3.0f, &e) == 0);
    ck_assert_msg(rc_gp_snapshot_restore(&ctx, &snap, bp, NULL, &e) == 0, "%s", e.msg);
    download_bytes(&ctx, bp, back, np * 4);
    ck_assert(memcmp(back, hp, np * 4) == 0);
    rc_gp_snapshot_free(&snap);
    clReleaseMemObject(bp);
    clReleaseMemObject(bs);
    free(hp), free(hs), free(back);
    rc_ctx_close(&ctx);
}
END_TEST

/* A parameter-only model (no state arena) merges; bad tables are refused with a message. */
START_TEST(no_state_arena_and_bad_tables) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    const gp_layout l[] = {{0, 1, 20000, K_POS}, {0, 0, 10, K_NEG}};
    gp_case c;
    case_build(&c, l, 2, 5);
    ck_assert(c.ns == 0);
    gp_dev d;
    dev_upload(&ctx, &c, &d);
    float *p = malloc(c.np * 4);
    double cs[2];
    dev_merge(&ctx, &c, &d, 0.5f, p, NULL, cs);
    compare(&c, 0.5, p, NULL, cs);
    rc_err e;
    rc_gp_tensor bad = {.offset = c.np - 5, .numel = 6, .arena = 0};
    ck_assert_int_eq(rc_gp_merge(&ctx, &d.snap, d.b[ADV_P], NULL, d.b[NAT_P], NULL, &bad, 1, 0.5f,
                                 NULL, &e), -1);
    ck_assert_msg(strstr(e.msg, "lies outside") != NULL, "%s", e.msg);
    bad = (rc_gp_tensor){.offset = 0, .numel = 1, .arena = 1};
    ck_assert_int_eq(rc_gp_merge(&ctx, &d.snap, d.b[ADV_P], NULL, d.b[NAT_P], NULL, &bad, 1, 0.5f,
                                 NULL, &e), -1);
    bad = (rc_gp_tensor){.offset = 0, .numel = 1, .arena = 2};
    ck_assert_int_eq(rc_gp_merge(&ctx, &d.snap, d.b[ADV_P], NULL, d.b[NAT_P], NULL, &bad, 1, 0.5f,
                                 NULL, &e), -1);
    ck_assert_int_eq(rc_gp_merge(&ctx, &d.snap, d.b[ADV_P], NULL, d.b[NAT_P], NULL, &bad, 0, 0.5f,
                                 NULL, &e), 0); /* nothing to do */
    free(p);
    dev_free(&d);
    case_free(&c);
    rc_ctx_close(&ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("gp");
    TCase *tc = tcase_create("gp");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, merge_matches_reference);
    tcase_add_test(tc, beta_edges);
    tcase_add_test(tc, accurate_on_large_tensor);
    tcase_add_test(tc, eps_clamps_each_norm);
    tcase_add_test(tc, repeated_merges_are_bit_identical);
    tcase_add_test(tc, merge_ignores_group_size);
    tcase_add_test(tc, snapshot_round_trip_is_bit_exact);
    tcase_add_test(tc, no_state_arena_and_bad_tables);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
