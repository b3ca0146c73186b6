/* Program registry and on-disk binary cache (see ramp/program.h).
 *
 * A cache file is named by a hash of its identity (source hash, options, device, vendor, driver
 * and platform version) and holds: magic "RCLCACHE", u32 format version, u32 identity length,
 * the identity text, u64 binary length, u32 CRC-32 of the binary, the binary. Anything that does
 * not match exactly (short file, other identity, bad CRC, binary the driver refuses) is counted
 * as a reject and rebuilt from source. Binaries are saved when the context closes, after the
 * kernels have run: PoCL then includes the work-group code it specialised at first launch. */
#include "ramp/program.h"
#include "ramp/files.h"
#include "ramp/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CACHE_MAGIC "RCLCACHE"
#define CACHE_VERSION 1u
/* Every program: OpenCL C 1.2 and the device class (cl/common.cl reads RC_GPU). */
static const char *base_options(const rc_ctx *ctx) {
    return ctx->cls == RC_CLASS_GPU ? "-cl-std=CL1.2 -DRC_GPU=1" : "-cl-std=CL1.2 -DRC_GPU=0";
}

struct rc_program_entry {
    char *identity;
    char label[128];
    cl_program program;
    int built_from_source;
    char cache_path[1200];
};

const char *rc_cl_source_find(const char *name) {
    for (int i = 0; i < rc_cl_source_count; i++)
        if (strcmp(rc_cl_sources[i].name, name) == 0) return rc_cl_sources[i].text;
    return NULL;
}


void rc_program_cache_init(rc_ctx *ctx) {
    ctx->cache_dir[0] = '\0';
    const char *off = getenv("RAMP_CL_NO_CACHE");
    if (off && *off && strcmp(off, "0") != 0) return;
    const char *dir = getenv("RAMP_CL_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (!home || !*home) { /* a service or a cron job without HOME: the account's home */
        const struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (dir && *dir)
        snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s", dir);
    else if (xdg && *xdg)
        snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s/ramp-cl", xdg);
    else if (home && *home)
        snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s/.cache/ramp-cl", home);
    else
        fprintf(stderr, "ramp-cl: warning: no directory for the kernel cache (HOME and "
                        "XDG_CACHE_HOME are unset and the account has no home): kernels will be "
                        "compiled on every run; set RAMP_CL_CACHE_DIR\n");
    if (ctx->cache_dir[0] && rc_mkdir_p(ctx->cache_dir) != 0) {
        /* No writable cache (e.g. a build machine without HOME): run without one. */
        fprintf(stderr, "ramp-cl: warning: program cache %s unusable (%s); kernels will be "
                        "compiled on every run\n", ctx->cache_dir, strerror(errno));
        ctx->cache_dir[0] = '\0';
    }
}

static char *make_identity(const rc_ctx *ctx, const char *source, const char *options) {
    size_t n = strlen(source);
    uint64_t h = rc_fnv1a64(source, n, RC_FNV_SEED);
    const char *fmt = "ramp-cl program cache v%u\nsource %016llx %zu\noptions %s %s\n"
                      "device %s\nvendor %s\ndriver %s\nplatform %s\n";
    const rc_device_desc *d = &ctx->dev;
    int len = snprintf(NULL, 0, fmt, CACHE_VERSION, (unsigned long long)h, n, base_options(ctx),
                       options, d->name, d->vendor, d->driver_version, d->platform_version);
    char *s = malloc((size_t)len + 1);
    if (s)
        snprintf(s, (size_t)len + 1, fmt, CACHE_VERSION, (unsigned long long)h, n, base_options(ctx),
                 options, d->name, d->vendor, d->driver_version, d->platform_version);
    return s;
}

static void cache_path_for(const rc_ctx *ctx, const char *identity, char *out, size_t n) {
    if (!ctx->cache_dir[0]) {
        out[0] = '\0';
        return;
    }
    unsigned long long h = rc_fnv1a64(identity, strlen(identity), RC_FNV_SEED);
    snprintf(out, n, "%s/%016llx.bin", ctx->cache_dir, h);
}

int rc_program_cache_path(const rc_ctx *ctx, const char *source, const char *options, char *out,
                          size_t n) {
    char *id = make_identity(ctx, source, options);
    if (!id) return -1;
    cache_path_for(ctx, id, out, n);
    free(id);
    return out[0] ? 0 : -1;
}

/* Read and validate a cache file. Returns a malloc'ed binary, or NULL when the file is absent
 * (*rejected = 0) or does not validate (*rejected = 1). */
static unsigned char *cache_read(const char *path, const char *identity, size_t *bin_len,
                                 int *rejected) {
    *rejected = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    *rejected = 1;
    unsigned char *bin = NULL;
    char magic[8];
    uint32_t version, id_len, crc;
    uint64_t blen;
    size_t want_id = strlen(identity);
    struct stat st;
    if (fstat(fileno(f), &st) != 0) goto out;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, CACHE_MAGIC, 8) != 0) goto out;
    if (fread(&version, 4, 1, f) != 1 || version != CACHE_VERSION) goto out;
    if (fread(&id_len, 4, 1, f) != 1 || id_len != want_id) goto out;
    char *id = malloc(id_len + 1);
    if (!id) goto out;
    int same = fread(id, 1, id_len, f) == id_len && memcmp(id, identity, id_len) == 0;
    free(id);
    if (!same) goto out;
    if (fread(&blen, 8, 1, f) != 1 || fread(&crc, 4, 1, f) != 1) goto out;
    uint64_t header = 8 + 4 + 4 + (uint64_t)id_len + 8 + 4;
    if (blen == 0 || (uint64_t)st.st_size != header + blen) goto out;
    bin = malloc((size_t)blen);
    if (!bin) goto out;
    if (fread(bin, 1, (size_t)blen, f) != blen ||
        crc32(0L, bin, (uInt)blen) != (uLong)crc) {
        free(bin);
        bin = NULL;
        goto out;
    }
    *bin_len = (size_t)blen;
    *rejected = 0;
out:
    fclose(f);
    return bin;
}

/* Write a cache file through the atomic writer (ramp/files.h): another process sharing the
 * cache never reads a partial binary. */
static int cache_write(const char *path, const char *identity, const unsigned char *bin,
                       size_t bin_len, rc_err *e) {
    rc_atomic_file a;
    if (rc_atomic_begin(&a, path, e)) return -1;
    uint32_t version = CACHE_VERSION, id_len = (uint32_t)strlen(identity);
    uint32_t crc = (uint32_t)crc32(0L, bin, (uInt)bin_len);
    uint64_t blen = bin_len;
    if (!rc_atomic_write(&a, CACHE_MAGIC, 8) && !rc_atomic_write(&a, &version, 4) &&
        !rc_atomic_write(&a, &id_len, 4) && !rc_atomic_write(&a, identity, id_len) &&
        !rc_atomic_write(&a, &blen, 8) && !rc_atomic_write(&a, &crc, 4))
        rc_atomic_write(&a, bin, bin_len);
    return rc_atomic_commit(&a, e);
}

static void cache_save(rc_ctx *ctx, struct rc_program_entry *p) {
    size_t size = 0;
    cl_int s = clGetProgramInfo(p->program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL);
    if (s != CL_SUCCESS || size == 0) return; /* the driver offers no binary: nothing to cache */
    unsigned char *bin = malloc(size);
    if (!bin) return;
    unsigned char *bins[1] = {bin};
    s = clGetProgramInfo(p->program, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL);
    if (s == CL_SUCCESS) {
        rc_err e;
        if (cache_write(p->cache_path, p->identity, bin, size, &e) == 0)
            ctx->stats.cache_writes++;
        else
            fprintf(stderr, "ramp-cl: warning: could not write program cache: %s\n", e.msg);
    }
    free(bin);
}

static int build_error(rc_ctx *ctx, cl_program prog, cl_int s, const char *label,
                       const char *options, rc_err *e) {
    size_t n = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(prog, ctx->dev.device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) ==
            CL_SUCCESS &&
        n > 0 && (log = calloc(n + 1, 1)) != NULL)
        clGetProgramBuildInfo(prog, ctx->dev.device, CL_PROGRAM_BUILD_LOG, n, log, NULL);
    rc_err_cl(e, "clBuildProgram", s,
              "kernel source %s, options \"%s %s\", device %s; build log:\n%s", label, base_options(ctx),
              options, ctx->dev.name, log && log[0] ? log : "(empty)");
    free(log);
    return -1;
}

static int build(rc_ctx *ctx, cl_program prog, const char *options, cl_int *status) {
    char opts[4096];
    snprintf(opts, sizeof opts, "%s %s", base_options(ctx), options);
    *status = clBuildProgram(prog, 1, &ctx->dev.device, opts, NULL, NULL);
    return *status == CL_SUCCESS ? 0 : -1;
}

static cl_program load_cached(rc_ctx *ctx, struct rc_program_entry *p, const char *options) {
    if (!p->cache_path[0]) return NULL;
    size_t len = 0;
    int rejected;
    unsigned char *bin = cache_read(p->cache_path, p->identity, &len, &rejected);
    if (!bin) {
        if (rejected) ctx->stats.cache_rejects++;
        return NULL;
    }
    const unsigned char *bins[1] = {bin};
    cl_int s, bs;
    cl_program prog = clCreateProgramWithBinary(ctx->context, 1, &ctx->dev.device, &len, bins,
                                                &bs, &s);
    free(bin);
    if (s == CL_SUCCESS && bs == CL_SUCCESS && build(ctx, prog, options, &s) == 0) {
        ctx->stats.cache_hits++;
        return prog;
    }
    /* The driver refused a binary that passed our checks (e.g. a driver update that kept its
     * version string): rebuild from source and overwrite it. */
    if (prog) clReleaseProgram(prog);
    ctx->stats.cache_rejects++;
    return NULL;
}

int rc_program_from_source(rc_ctx *ctx, const char *label, const char *source,
                           const char *options, cl_program *out, rc_err *e) {
    if (!options) options = "";
    char *identity = make_identity(ctx, source, options);
    if (!identity) return rc_err_set(e, "out of host memory building %s", label);
    for (size_t i = 0; i < ctx->n_programs; i++) {
        if (strcmp(ctx->programs[i].identity, identity) == 0) {
            free(identity);
            *out = ctx->programs[i].program;
            return 0;
        }
    }
    if (ctx->n_programs == ctx->cap_programs) {
        size_t cap = ctx->cap_programs ? 2 * ctx->cap_programs : 16;
        struct rc_program_entry *grown = realloc(ctx->programs, cap * sizeof *grown);
        if (!grown) {
            free(identity);
            return rc_err_set(e, "out of host memory building %s", label);
        }
        ctx->programs = grown;
        ctx->cap_programs = cap;
    }
    struct rc_program_entry *p = &ctx->programs[ctx->n_programs];
    memset(p, 0, sizeof *p);
    p->identity = identity;
    snprintf(p->label, sizeof p->label, "%s", label);
    cache_path_for(ctx, identity, p->cache_path, sizeof p->cache_path);

    cl_program prog = load_cached(ctx, p, options);
    if (!prog) {
        cl_int s;
        size_t len = strlen(source);
        prog = clCreateProgramWithSource(ctx->context, 1, &source, &len, &s);
        if (s != CL_SUCCESS) {
            free(identity);
            return rc_err_cl(e, "clCreateProgramWithSource", s, "kernel source %s", label);
        }
        if (build(ctx, prog, options, &s) != 0) {
            build_error(ctx, prog, s, label, options, e);
            clReleaseProgram(prog);
            free(identity);
            return -1;
        }
        ctx->stats.source_builds++;
        p->built_from_source = 1;
    }
    p->program = prog;
    ctx->n_programs++;
    *out = prog;
    return 0;
}

static char *read_text_file(const char *path, rc_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc_err_set(e, "cannot open kernel file %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *grown = realloc(buf, cap * 2);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        rc_err_set(e, "cannot read kernel file %s", path);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* dir's prelude, a #line directive and dir/file, assembled as tools/embed-cl.sh assembles the
 * embedded sources (so the prelude is part of the cache key here too). NULL with *e set. */
static char *read_kernel_dir_source(const char *dir, const char *file, char *path, size_t n,
                                    rc_err *e) {
    snprintf(path, n, "%s/%s", dir, RC_CL_PRELUDE);
    char *prelude = read_text_file(path, e);
    if (!prelude) return NULL;
    snprintf(path, n, "%s/%s", dir, file);
    char *text = read_text_file(path, e), *src = NULL;
    if (text) {
        size_t np = strlen(prelude);
        const char *nl = np && prelude[np - 1] != '\n' ? "\n" : "";
        int len = snprintf(NULL, 0, "%s%s#line 1 \"%s\"\n%s", prelude, nl, file, text);
        if ((src = malloc((size_t)len + 1)) != NULL)
            snprintf(src, (size_t)len + 1, "%s%s#line 1 \"%s\"\n%s", prelude, nl, file, text);
        else
            rc_err_set(e, "out of host memory reading %s", path);
    }
    free(prelude);
    free(text);
    return src;
}

int rc_program_get(rc_ctx *ctx, const char *file, const char *options, cl_program *out,
                   rc_err *e) {
    const char *dir = getenv("RAMP_CL_KERNEL_DIR");
    if (dir && *dir) {
        char path[1024];
        char *text = read_kernel_dir_source(dir, file, path, sizeof path, e);
        if (!text) return -1;
        int r = rc_program_from_source(ctx, path, text, options, out, e);
        free(text);
        return r;
    }
    const char *text = rc_cl_source_find(file);
    if (!text) return rc_err_set(e, "no kernel source named %s is built into this binary", file);
    return rc_program_from_source(ctx, file, text, options, out, e);
}

int rc_kernel_create(rc_ctx *ctx, const char *file, const char *kernel, const char *options,
                     cl_kernel *out, rc_err *e) {
    cl_program prog;
    if (rc_program_get(ctx, file, options, &prog, e)) return -1;
    cl_int s;
    *out = clCreateKernel(prog, kernel, &s);
    if (s != CL_SUCCESS) return rc_err_cl(e, "clCreateKernel", s, "kernel %s in %s", kernel, file);
    return 0;
}

void rc_programs_release(rc_ctx *ctx) {
    for (size_t i = 0; i < ctx->n_programs; i++) {
        struct rc_program_entry *p = &ctx->programs[i];
        if (p->built_from_source && p->cache_path[0]) cache_save(ctx, p);
        clReleaseProgram(p->program);
        free(p->identity);
    }
    free(ctx->programs);
    ctx->programs = NULL;
    ctx->n_programs = ctx->cap_programs = 0;
}
