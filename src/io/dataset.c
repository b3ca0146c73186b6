#include "ramp/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Sizes are computed in 64 bits and then allocated: size_t must hold them. */
_Static_assert(SIZE_MAX >= UINT64_MAX, "ramp-cl needs a 64-bit size_t");

#define IDX_IMAGES_MAGIC 0x00000803u /* unsigned bytes, 3 dimensions */
#define IDX_LABELS_MAGIC 0x00000801u /* unsigned bytes, 1 dimension */
#define NUM_CLASSES 10u
#define CIFAR_PIXELS 3072u               /* 3 planes of 32x32 */
#define CIFAR_RECORD (1u + CIFAR_PIXELS) /* label byte first */
#define CROP_PAD 4u
#define STREAM_SHUFFLE (0x62617463ULL << 32) /* "batc": or-ed with the epoch */
#define STREAM_AUGMENT (0x61756720ULL << 32) /* "aug " */

void rc_dataset_free(rc_dataset *d) {
    free(d->pixels);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

/* The last component of a path (trailing slashes ignored) followed by suffix. */
static void set_name(rc_dataset *d, const char *path, const char *suffix) {
    size_t end = strlen(path);
    while (end > 1 && path[end - 1] == '/') end--;
    size_t start = end;
    while (start > 0 && path[start - 1] != '/') start--;
    snprintf(d->name, sizeof d->name, "%.*s%s", (int)(end - start), path + start, suffix);
}

static int join_path(char *out, size_t n, const char *dir, const char *file, const char *ext,
                     rc_err *e) {
    int len = snprintf(out, n, "%s/%s%s", dir, file, ext);
    if (len < 0 || (size_t)len >= n) return rc_err_set(e, "%s: path too long", dir);
    return 0;
}

/* ---- IDX ------------------------------------------------------------------------------------ */

/* An IDX file opened through zlib, which reads gzip and raw files alike. */
typedef struct idx_file {
    const char *path;
    gzFile gz;
    int gzip; /* 1f 8b magic: sizes in messages are after decompression */
} idx_file;

static int idx_open(idx_file *f, const char *path, rc_err *e) {
    f->path = path;
    errno = 0;
    f->gz = gzopen(path, "rb");
    if (!f->gz)
        return rc_err_set(e, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "out of memory");
    gzbuffer(f->gz, 1u << 17); /* fewer read calls than zlib's 8 KiB default */
    /* zlib decides by the gzip magic 1f 8b; asked before the first read, it looks ahead. */
    f->gzip = !gzdirect(f->gz);
    return 0;
}

/* zlib's message for the last error, without the "path: " it puts in front. */
static const char *idx_zlib_reason(idx_file *f, int *errnum) {
    const char *m = gzerror(f->gz, errnum);
    size_t n = strlen(f->path);
    if (strncmp(m, f->path, n) == 0 && strncmp(m + n, ": ", 2) == 0) m += n + 2;
    return m;
}

/* Reads up to len bytes: fewer only where the data ends. -1 on a read or decompression error. */
static int64_t idx_read(idx_file *f, void *buf, uint64_t len, rc_err *e) {
    uint64_t got = 0;
    while (got < len) {
        uint64_t left = len - got;
        unsigned chunk = left > (1u << 30) ? 1u << 30 : (unsigned)left; /* gzread takes an int */
        int r = gzread(f->gz, (uint8_t *)buf + got, chunk);
        if (r <= 0) {
            int errnum;
            const char *why = idx_zlib_reason(f, &errnum);
            /* Z_BUF_ERROR: a gzip stream cut short, reported by the caller as truncation. */
            if (errnum != Z_OK && errnum != Z_BUF_ERROR)
                return rc_err_set(e, "%s: cannot %s: %s", f->path,
                                  errnum == Z_ERRNO ? "read" : "decompress", why);
            break;
        }
        got += (uint64_t)r;
    }
    return (int64_t)got;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *idx_unpacked(const idx_file *f) { return f->gzip ? " (decompressed)" : ""; }

/* The magic number, then ndims nonzero big-endian dimensions. The magic is checked before the
 * dimensions are read, so that a small file of the other kind is named as such. */
static int idx_header(idx_file *f, uint32_t magic, const char *kind, uint32_t *dims, int ndims,
                      rc_err *e) {
    uint8_t h[16] = {0};
    uint64_t len = 4 + 4 * (uint64_t)ndims;
    int64_t got = idx_read(f, h, 4, e);
    if (got < 0) return -1;
    uint32_t m = be32(h);
    if (got == 4 && m != magic)
        return rc_err_set(e, "%s: not an IDX %s file: magic 0x%08x, want 0x%08x%s", f->path, kind,
                          m, magic,
                          m == IDX_IMAGES_MAGIC   ? " (this is an image file)"
                          : m == IDX_LABELS_MAGIC ? " (this is a label file)"
                                                  : "");
    if (got == 4) {
        int64_t dims_got = idx_read(f, h + 4, len - 4, e);
        if (dims_got < 0) return -1;
        got += dims_got;
    }
    if ((uint64_t)got < len)
        return rc_err_set(e,
                          "%s: truncated: %lld bytes%s, shorter than the %llu-byte IDX %s header",
                          f->path, (long long)got, idx_unpacked(f), (unsigned long long)len, kind);
    for (int i = 0; i < ndims; i++) {
        dims[i] = be32(h + 4 + 4 * i);
        if (dims[i] == 0) return rc_err_set(e, "%s: header has a zero dimension", f->path);
    }
    return 0;
}

/* Reads the first `keep` bytes after the header into a new buffer and checks that exactly `total`
 * follow it. The buffer grows as data arrives, so a corrupt header cannot demand a huge
 * allocation before the truncation is found. `what` describes the header's claim. */
static int idx_payload(idx_file *f, const char *what, uint64_t total, uint64_t keep, uint8_t **out,
                       rc_err *e) {
    uint8_t *buf = NULL;
    uint64_t cap = 0, have = 0;
    while (have < keep) {
        uint64_t next = cap ? 2 * cap : 1u << 20;
        if (next > keep) next = keep;
        uint8_t *p = realloc(buf, next);
        if (!p) {
            free(buf);
            return rc_err_set(e, "%s: out of memory reading %s", f->path, what);
        }
        buf = p;
        cap = next;
        int64_t got = idx_read(f, buf + have, cap - have, e);
        if (got < 0) goto fail;
        have += (uint64_t)got;
        if (have < cap) break;
    }
    uint64_t rest = 0;
    if (have == keep) {
        uint8_t scratch[16384];
        int64_t got;
        do {
            got = idx_read(f, scratch, sizeof scratch, e);
            if (got < 0) goto fail;
            rest += (uint64_t)got;
        } while (got == (int64_t)sizeof scratch);
    }
    uint64_t held = have + rest;
    if (held < total) {
        rc_err_set(e,
                   "%s: truncated: header says %s (%llu bytes) but the file holds %llu bytes after "
                   "the header%s",
                   f->path, what, (unsigned long long)total, (unsigned long long)held,
                   idx_unpacked(f));
        goto fail;
    }
    if (held > total) {
        rc_err_set(
            e,
            "%s: %llu bytes of trailing data: header says %s (%llu bytes) but the file holds "
            "%llu bytes after the header%s",
            f->path, (unsigned long long)(held - total), what, (unsigned long long)total,
            (unsigned long long)held, idx_unpacked(f));
        goto fail;
    }
    *out = buf;
    return 0;
fail:
    free(buf);
    return -1;
}

int rc_dataset_load_idx(rc_dataset *out, const char *images_path, const char *labels_path,
                        uint32_t first_k, rc_err *e) {
    memset(out, 0, sizeof *out);
    idx_file im = {0}, lb = {0};
    uint32_t idims[3], n_labels;
    uint8_t *pixels = NULL, *labels = NULL;
    char what[96];
    int rc = -1;
    if (idx_open(&im, images_path, e) || idx_header(&im, IDX_IMAGES_MAGIC, "image", idims, 3, e) ||
        idx_open(&lb, labels_path, e) ||
        idx_header(&lb, IDX_LABELS_MAGIC, "label", &n_labels, 1, e))
        goto done;
    uint32_t n = idims[0], h = idims[1], w = idims[2];
    uint64_t image_bytes = (uint64_t)h * w;
    if (n_labels != n) {
        rc_err_set(e, "%s holds %u images but %s holds %u labels", images_path, n, labels_path,
                   n_labels);
        goto done;
    }
    if (image_bytes > UINT64_MAX / n) {
        rc_err_set(e, "%s: header says %u images of %ux%u: too large", images_path, n, h, w);
        goto done;
    }
    if (first_k > n) {
        rc_err_set(e, "%s: asked for the first %u images but the file holds %u", images_path,
                   first_k, n);
        goto done;
    }
    uint32_t k = first_k ? first_k : n;

    /* Every label is checked, also those past first_k: a bad one means a bad file. */
    snprintf(what, sizeof what, "%u labels", n);
    if (idx_payload(&lb, what, n, n, &labels, e)) goto done;
    for (uint32_t i = 0; i < n; i++)
        if (labels[i] >= NUM_CLASSES) {
            rc_err_set(e, "%s: label %u of point %u is out of range (want 0..%u)", labels_path,
                       labels[i], i, NUM_CLASSES - 1);
            goto done;
        }
    snprintf(what, sizeof what, "%u images of %ux%u", n, h, w);
    if (idx_payload(&im, what, n * image_bytes, k * image_bytes, &pixels, e)) goto done;

    out->n = k;
    out->c = 1;
    out->h = h;
    out->w = w;
    out->pixels = pixels;
    out->labels = labels;
    out->num_classes = NUM_CLASSES;
    set_name(out, images_path, "");
    pixels = labels = NULL;
    rc = 0;
done:
    if (im.gz) gzclose(im.gz);
    if (lb.gz) gzclose(lb.gz);
    free(pixels);
    free(labels);
    return rc;
}

/* dir/stem, or dir/stem.gz when that is the one present. */
static int find_idx(char *out, size_t n, const char *dir, const char *stem, rc_err *e) {
    const char *ext[] = {"", ".gz"};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (join_path(out, n, dir, stem, ext[i], e)) return -1;
        if (stat(out, &st) == 0) return 0;
        if (errno != ENOENT) return rc_err_set(e, "%s: %s", out, strerror(errno));
    }
    return rc_err_set(e, "%s: neither %s nor %s.gz is there", dir, stem, stem);
}

int rc_dataset_load_mnist_dir(rc_dataset *out, const char *dir, int train, uint32_t first_k,
                              rc_err *e) {
    memset(out, 0, sizeof *out);
    char images[4096], labels[4096];
    const char *split = train ? "train" : "t10k";
    char stem[32];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", split);
    if (find_idx(images, sizeof images, dir, stem, e)) return -1;
    snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", split);
    if (find_idx(labels, sizeof labels, dir, stem, e)) return -1;
    if (rc_dataset_load_idx(out, images, labels, first_k, e)) return -1;
    set_name(out, dir, train ? "-train" : "-test");
    return 0;
}

/* ---- CIFAR-10 ------------------------------------------------------------------------------- */

static int cifar_path(char *out, size_t n, const char *dir, int train, uint32_t i, rc_err *e) {
    char file[32];
    if (train)
        snprintf(file, sizeof file, "data_batch_%u.bin", i + 1);
    else
        snprintf(file, sizeof file, "test_batch.bin");
    return join_path(out, n, dir, file, "", e);
}

int rc_dataset_load_cifar10(rc_dataset *out, const char *dir, int train, uint32_t first_k,
                            rc_err *e) {
    memset(out, 0, sizeof *out);
    uint32_t files = train ? 5 : 1;
    uint64_t records[5], n = 0;
    char path[4096];
    /* Sizes first, so that first_k is checked and memory sized before anything is read. */
    for (uint32_t i = 0; i < files; i++) {
        struct stat st;
        if (cifar_path(path, sizeof path, dir, train, i, e)) return -1;
        if (stat(path, &st) != 0) return rc_err_set(e, "%s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode)) /* a directory's size is no record count */
            return rc_err_set(e, "%s: %s, not a CIFAR-10 binary batch", path,
                              S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        uint64_t size = (uint64_t)st.st_size;
        if (size == 0 || size % CIFAR_RECORD != 0)
            return rc_err_set(
                e,
                "%s: truncated or not a CIFAR-10 binary batch: its %llu bytes are %llu "
                "whole %u-byte records (1 label + %u pixels) and %llu bytes more",
                path, (unsigned long long)size, (unsigned long long)(size / CIFAR_RECORD),
                CIFAR_RECORD, CIFAR_PIXELS, (unsigned long long)(size % CIFAR_RECORD));
        records[i] = size / CIFAR_RECORD;
        n += records[i];
    }
    const char *names = train ? "data_batch_1.bin..data_batch_5.bin" : "test_batch.bin";
    if (n > UINT32_MAX)
        return rc_err_set(e, "%s: %s hold %llu records, more than 2^32-1", dir, names,
                          (unsigned long long)n);
    if (first_k > n)
        return rc_err_set(e, "%s: asked for the first %u images but %s hold %llu", dir, first_k,
                          names, (unsigned long long)n);
    uint32_t k = first_k ? first_k : (uint32_t)n;
    uint8_t *pixels = malloc((uint64_t)k * CIFAR_PIXELS), *labels = malloc(k);
    if (!pixels || !labels) {
        rc_err_set(e, "%s: out of memory for %u CIFAR-10 images", dir, k);
        goto fail;
    }
    uint32_t got = 0;
    for (uint32_t i = 0; i < files && got < k; i++) {
        if (cifar_path(path, sizeof path, dir, train, i, e)) goto fail;
        FILE *f = fopen(path, "rb");
        if (!f) {
            rc_err_set(e, "%s: cannot open: %s", path, strerror(errno));
            goto fail;
        }
        for (uint64_t r = 0; r < records[i] && got < k; r++, got++) {
            uint8_t *px = pixels + (uint64_t)got * CIFAR_PIXELS;
            if (fread(&labels[got], 1, 1, f) != 1 ||
                fread(px, 1, CIFAR_PIXELS, f) != CIFAR_PIXELS) {
                rc_err_set(e, "%s: cannot read record %llu: %s", path, (unsigned long long)r,
                           ferror(f) ? strerror(errno) : "the file shrank while being read");
                fclose(f);
                goto fail;
            }
            if (labels[got] >= NUM_CLASSES) {
                rc_err_set(e, "%s: label %u of record %llu is out of range (want 0..%u)", path,
                           labels[got], (unsigned long long)r, NUM_CLASSES - 1);
                fclose(f);
                goto fail;
            }
        }
        fclose(f);
    }
    out->n = k;
    out->c = 3;
    out->h = 32;
    out->w = 32;
    out->pixels = pixels;
    out->labels = labels;
    out->num_classes = NUM_CLASSES;
    set_name(out, dir, train ? "-train" : "-test");
    return 0;
fail:
    free(pixels);
    free(labels);
    return -1;
}

/* ---- batches -------------------------------------------------------------------------------- */

static void to_float(const uint8_t *src, float *dst, size_t len) {
    for (size_t i = 0; i < len; i++) dst[i] = src[i] / 255.0f;
}

/* out(i, j) = padded(i + dy, j + dx), then a mirror of the columns with probability 1/2; padded
 * is the image with `pad` zeros on every side. The three draws are in this order. */
static void crop_flip(const rc_dataset *d, const uint8_t *src, float *dst, uint32_t pad,
                      rc_rng *r) {
    int64_t dy = rc_rng_below(r, 2 * pad + 1), dx = rc_rng_below(r, 2 * pad + 1);
    int flip = (int)rc_rng_below(r, 2);
    int64_t h = d->h, w = d->w;
    for (uint32_t ch = 0; ch < d->c; ch++, src += h * w)
        for (int64_t i = 0; i < h; i++)
            for (int64_t j = 0; j < w; j++) {
                int64_t sy = i + dy - pad, sx = (flip ? w - 1 - j : j) + dx - pad;
                *dst++ = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[sy * w + sx] / 255.0f : 0.0f;
            }
}

int rc_dataset_slice(const rc_dataset *d, uint32_t start, uint32_t count, float *x_out,
                     int32_t *y_out) {
    if (start > d->n || count > d->n - start) return -1;
    size_t image = (size_t)d->c * d->h * d->w;
    to_float(d->pixels + start * image, x_out, count * image);
    for (uint32_t i = 0; i < count; i++) y_out[i] = d->labels[start + i];
    return 0;
}

int rc_batcher_init(rc_batcher *b, const rc_dataset *d, uint32_t batch_size, uint64_t seed,
                    int shuffle, int augment, rc_err *e) {
    memset(b, 0, sizeof *b);
    if (batch_size == 0) return rc_err_set(e, "%s: batch size must be positive", d->name);
    if (d->n == 0) return rc_err_set(e, "%s: the dataset is empty", d->name);
    b->order = malloc((size_t)d->n * sizeof *b->order);
    if (!b->order)
        return rc_err_set(e, "%s: out of memory for the order of %u points", d->name, d->n);
    b->d = d;
    b->batch_size = batch_size;
    b->augment_crop_flip = augment;
    b->pad = augment ? CROP_PAD : 0;
    b->seed = seed;
    b->shuffle = shuffle;
    rc_batcher_start_epoch(b, 0);
    return 0;
}

void rc_batcher_start_epoch(rc_batcher *b, uint32_t epoch) {
    for (uint32_t i = 0; i < b->d->n; i++) b->order[i] = i;
    if (b->shuffle) {
        rc_rng r;
        rc_rng_seed(&r, b->seed, STREAM_SHUFFLE | epoch);
        rc_rng_shuffle(&r, b->order, b->d->n);
    }
    rc_rng_seed(&b->rng, b->seed, STREAM_AUGMENT | epoch);
    b->pos = 0;
}

uint32_t rc_batcher_next(rc_batcher *b, float *x_out, int32_t *y_out) {
    const rc_dataset *d = b->d;
    uint32_t m = d->n - b->pos < b->batch_size ? d->n - b->pos : b->batch_size;
    size_t image = (size_t)d->c * d->h * d->w;
    for (uint32_t i = 0; i < m; i++) {
        uint32_t idx = b->order[b->pos + i];
        const uint8_t *src = d->pixels + idx * image;
        if (b->augment_crop_flip)
            crop_flip(d, src, x_out + i * image, b->pad, &b->rng);
        else
            to_float(src, x_out + i * image, image);
        y_out[i] = d->labels[idx];
    }
    b->pos += m;
    return m;
}

uint32_t rc_batcher_num_batches(const rc_batcher *b) {
    return (uint32_t)(((uint64_t)b->d->n + b->batch_size - 1) / b->batch_size);
}

void rc_batcher_free(rc_batcher *b) {
    free(b->order);
    memset(b, 0, sizeof *b);
}

int rc_load_split(const rc_config *cfg, int train, uint32_t first_k, rc_dataset *d, rc_err *e) {
    if (cfg->data.dataset == RC_DATASET_CIFAR10)
        return rc_dataset_load_cifar10(d, cfg->data.path, train, first_k, e);
    return rc_dataset_load_mnist_dir(d, cfg->data.path, train, first_k, e);
}
