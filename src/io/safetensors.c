/* safetensors reader and writer (see ramp/safetensors.h).
 *
 * The reader loads the whole file and walks the header with the strict JSON cursor of
 * ramp/json.h, following the format's schema: an object of tensor objects ({"dtype": string,
 * "shape": [integers], "data_offsets": [integer, integer]}) and an optional "__metadata__"
 * object of strings. Anything else (floats, true/false/null, deeper nesting, unknown fields,
 * duplicate names, invalid UTF-8) is rejected with the header byte it was found at. Only then are
 * sizes checked against shapes and the tensors checked to tile the data section exactly, so a bad
 * file fails before any tensor pointer is formed. */
#include "ramp/safetensors.h"
#include "ramp/files.h"
#include "ramp/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tensor bytes are copied between the file and host arrays unchanged, which is only right where
 * the host is little-endian like the format. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ramp-cl safetensors: this host is not little-endian (or the compiler does not say)"
#endif

static const struct {
    const char *name;
    size_t size;
} dtypes[RC_ST_NUM_DTYPES] = {
    [RC_ST_BOOL] = {"BOOL", 1},       [RC_ST_U8] = {"U8", 1},
    [RC_ST_I8] = {"I8", 1},           [RC_ST_F8_E5M2] = {"F8_E5M2", 1},
    [RC_ST_F8_E4M3] = {"F8_E4M3", 1}, [RC_ST_I16] = {"I16", 2},
    [RC_ST_U16] = {"U16", 2},         [RC_ST_F16] = {"F16", 2},
    [RC_ST_BF16] = {"BF16", 2},       [RC_ST_I32] = {"I32", 4},
    [RC_ST_U32] = {"U32", 4},         [RC_ST_F32] = {"F32", 4},
    [RC_ST_F64] = {"F64", 8},         [RC_ST_I64] = {"I64", 8},
    [RC_ST_U64] = {"U64", 8},
};

#define META_KEY "__metadata__"
/* Room for a name from a file in a message, escaped by rc_err_text. */
#define NAME_TEXT 256

const char *rc_st_dtype_name(int dtype) {
    return dtype >= 0 && dtype < RC_ST_NUM_DTYPES ? dtypes[dtype].name : "?";
}

/* The largest tensor or file we handle: it must fit in memory and in the signed 64-bit offsets
 * that other readers use. */
static uint64_t bytes_max(void) {
    return SIZE_MAX < (uint64_t)INT64_MAX ? (uint64_t)SIZE_MAX : (uint64_t)INT64_MAX;
}

/* *out = product(shape) * element size for non-negative dims; -1 if that exceeds bytes_max(). */
static int shape_bytes(int dtype, int ndim, const int64_t *shape, uint64_t *out) {
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) { /* empty, whatever the other dims are */
            *out = 0;
            return 0;
        }
    }
    uint64_t n = dtypes[dtype].size;
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (n > bytes_max() / d) return -1;
        n *= d;
    }
    *out = n;
    return 0;
}

/* "[2,3]"; "[]" for a scalar. */
static void fmt_shape(char *out, size_t cap, int ndim, const int64_t *shape) {
    size_t len = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (len < cap) snprintf(out + len, cap - len, "]");
}

/* ---- writer ---------------------------------------------------------------------------------- */

/* Check tensor i and return its size in bytes: everything the reader would reject is refused
 * here, so we never write a file we cannot read back. */
static int check_tensor(const char *path, const rc_st_tensor *t, size_t i, uint64_t *bytes,
                        rc_err *e) {
    const rc_st_tensor *x = &t[i];
    if (!x->name) return rc_err_set(e, "%s: tensor #%zu has no name", path, i);
    if (!rc_json_utf8_valid(x->name))
        return rc_err_set(e, "%s: tensor %s: name is not valid UTF-8", path, x->name);
    if (strcmp(x->name, META_KEY) == 0)
        return rc_err_set(e, "%s: tensor %s: the name is reserved for metadata", path, x->name);
    /* A model has hundreds of tensors at most: a quadratic check is cheap. */
    for (size_t j = 0; j < i; j++)
        if (strcmp(t[j].name, x->name) == 0)
            return rc_err_set(e, "%s: tensor %s: name given twice", path, x->name);
    if (x->dtype != RC_ST_F32 && x->dtype != RC_ST_I64)
        return rc_err_set(e, "%s: tensor %s: dtype %s (%d) cannot be written, only F32 and I64",
                          path, x->name, rc_st_dtype_name(x->dtype), x->dtype);
    if (x->ndim < 0 || x->ndim > RC_ST_MAX_DIMS)
        return rc_err_set(e, "%s: tensor %s: %d dimensions, at most %d are supported", path,
                          x->name, x->ndim, RC_ST_MAX_DIMS);
    char shape[256];
    fmt_shape(shape, sizeof shape, x->ndim, x->shape);
    for (int d = 0; d < x->ndim; d++)
        if (x->shape[d] < 0)
            return rc_err_set(e, "%s: tensor %s: shape %s has a negative dimension", path,
                              x->name, shape);
    if (shape_bytes(x->dtype, x->ndim, x->shape, bytes) != 0)
        return rc_err_set(e, "%s: tensor %s: shape %s is too large", path, x->name, shape);
    if (*bytes && !x->data)
        return rc_err_set(e, "%s: tensor %s: no data for shape %s", path, x->name, shape);
    return 0;
}

/* The header: compact JSON, metadata first, then the tensors in order with increasing offsets,
 * padded with spaces so that the data section starts 8-byte aligned. */
static int build_header(const char *path, const rc_st_tensor *t, size_t n,
                        const char *const *keys, const char *const *values, size_t n_meta,
                        rc_json_buf *h, rc_err *e) {
    rc_json_put(h, "{");
    if (n_meta) {
        rc_json_put(h, "\"" META_KEY "\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (!keys[i] || !values[i])
                return rc_err_set(e, "%s: metadata entry #%zu has no key or no value", path, i);
            if (!rc_json_utf8_valid(keys[i]) || !rc_json_utf8_valid(values[i]))
                return rc_err_set(e, "%s: metadata %s: not valid UTF-8", path, keys[i]);
            for (size_t j = 0; j < i; j++)
                if (strcmp(keys[j], keys[i]) == 0)
                    return rc_err_set(e, "%s: metadata %s: key given twice", path, keys[i]);
            if (i) rc_json_put(h, ",");
            rc_json_put_string(h, keys[i]);
            rc_json_put(h, ":");
            rc_json_put_string(h, values[i]);
        }
        rc_json_put(h, "}");
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes;
        if (check_tensor(path, t, i, &bytes, e)) return -1;
        if (bytes > bytes_max() - offset)
            return rc_err_set(e, "%s: tensor %s: the tensors add up to too many bytes", path,
                              t[i].name);
        if (i || n_meta) rc_json_put(h, ",");
        rc_json_put_string(h, t[i].name);
        rc_json_put(h, ":{\"dtype\":\"");
        rc_json_put(h, dtypes[t[i].dtype].name);
        rc_json_put(h, "\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            if (d) rc_json_put(h, ",");
            rc_json_put_int(h, (long long)t[i].shape[d]);
        }
        rc_json_put(h, "],\"data_offsets\":[");
        rc_json_put_int(h, (long long)offset);
        rc_json_put(h, ",");
        offset += bytes;
        rc_json_put_int(h, (long long)offset);
        rc_json_put(h, "]}");
    }
    rc_json_put(h, "}");
    while (h->len % 8) rc_json_put(h, " ");
    if (h->oom) return rc_err_set(e, "%s: out of host memory building the header", path);
    return 0;
}

/* The length, the header and the tensors, through the one atomic writer (ramp/files.h). */
static int write_atomic(const char *path, const rc_json_buf *h, const rc_st_tensor *t, size_t n,
                        rc_err *e) {
    rc_atomic_file a;
    if (rc_atomic_begin(&a, path, e)) return -1;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h->len >> (8 * i));
    int bad = rc_atomic_write(&a, len8, 8) || rc_atomic_write(&a, h->p, h->len);
    for (size_t i = 0; !bad && i < n; i++) {
        uint64_t bytes;
        shape_bytes(t[i].dtype, t[i].ndim, t[i].shape, &bytes); /* checked in build_header */
        bad = rc_atomic_write(&a, t[i].data, (size_t)bytes);
    }
    return rc_atomic_commit(&a, e);
}

int rc_st_write(const char *path, const rc_st_tensor *t, size_t n, const char *const *meta_keys,
                const char *const *meta_values, size_t n_meta, rc_err *e) {
    rc_json_buf h = {0};
    int r = build_header(path, t, n, meta_keys, meta_values, n_meta, &h, e);
    if (r == 0) r = write_atomic(path, &h, t, n, e);
    rc_json_buf_free(&h);
    return r;
}

/* ---- header parser --------------------------------------------------------------------------- */

/* The schema is walked with the strict JSON cursor of ramp/json.h; its messages say "header byte
 * N" and, inside a tensor's object, name the tensor (j->context). */

static int parse_dtype(rc_json *j, int *dtype) {
    const unsigned char *at = j->p;
    char *s;
    if (rc_json_string(j, &s)) return -1;
    for (int i = 0; i < RC_ST_NUM_DTYPES; i++) {
        if (strcmp(s, dtypes[i].name) == 0) {
            *dtype = i;
            free(s);
            return 0;
        }
    }
    j->p = at;
    char text[NAME_TEXT];
    rc_json_error(j, "unknown dtype \"%s\"", rc_err_text(text, sizeof text, s));
    free(s);
    return -1;
}

static int parse_shape(rc_json *j, rc_st_entry *t) {
    if (rc_json_expect(j, '[')) return -1;
    t->ndim = 0;
    if (rc_json_accept(j, ']')) return 0;
    int r;
    do {
        if (t->ndim == RC_ST_MAX_DIMS)
            return rc_json_error(j, "more than %d dimensions", RC_ST_MAX_DIMS);
        const unsigned char *at = (rc_json_skip_ws(j), j->p);
        int64_t d;
        if (rc_json_int(j, &d)) return -1;
        if (d < 0) {
            j->p = at;
            return rc_json_error(j, "negative dimension %lld", (long long)d);
        }
        t->shape[t->ndim++] = d;
    } while ((r = rc_json_more(j, ']')) == 1);
    return r;
}

static int parse_offsets(rc_json *j, int64_t off[2]) {
    if (rc_json_expect(j, '[')) return -1;
    for (int i = 0; i < 2; i++) {
        if (i && rc_json_expect(j, ',')) return -1;
        const unsigned char *at = (rc_json_skip_ws(j), j->p);
        if (rc_json_int(j, &off[i])) return -1;
        if (off[i] < 0) {
            j->p = at;
            return rc_json_error(j, "negative data offset %lld", (long long)off[i]);
        }
    }
    return rc_json_expect(j, ']');
}

/* {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}, each field exactly once. */
static int parse_tensor(rc_json *j, rc_st_entry *t, int64_t off[2]) {
    const char *fields[3] = {"dtype", "shape", "data_offsets"};
    int seen[3] = {0, 0, 0};
    if (rc_json_expect(j, '{')) return -1;
    int r = rc_json_accept(j, '}') ? 0 : 1;
    while (r == 1) {
        const unsigned char *at = (rc_json_skip_ws(j), j->p);
        char *key;
        if (rc_json_string(j, &key)) return -1;
        int k = 0;
        while (k < 3 && strcmp(key, fields[k]) != 0) k++;
        if (k == 3 || seen[k]) {
            j->p = at;
            char text[NAME_TEXT];
            rc_json_error(j, k == 3 ? "unknown field \"%s\"" : "field \"%s\" given twice",
                          rc_err_text(text, sizeof text, key));
            free(key);
            return -1;
        }
        free(key);
        seen[k] = 1;
        if (rc_json_expect(j, ':')) return -1;
        r = k == 0 ? parse_dtype(j, &t->dtype) : k == 1 ? parse_shape(j, t)
                                                         : parse_offsets(j, off);
        if (r) return -1;
        r = rc_json_more(j, '}');
    }
    if (r < 0) return -1;
    for (int k = 0; k < 3; k++)
        if (!seen[k]) return rc_json_error(j, "field \"%s\" missing", fields[k]);
    return 0;
}

static int parse_meta(rc_json *j, rc_st_file *f) {
    if (rc_json_expect(j, '{')) return -1;
    size_t cap = 0;
    int r = rc_json_accept(j, '}') ? 0 : 1;
    while (r == 1) {
        if (f->n_meta == cap) {
            cap = cap ? 2 * cap : 8;
            rc_st_meta_pair *grown = realloc(f->meta, cap * sizeof *grown);
            if (!grown) return rc_json_error(j, "out of host memory");
            f->meta = grown;
        }
        rc_st_meta_pair *m = &f->meta[f->n_meta];
        if (rc_json_string(j, &m->key)) return -1;
        if (rc_json_expect(j, ':') || rc_json_string(j, &m->value)) {
            free(m->key);
            return -1;
        }
        f->n_meta++;
        r = rc_json_more(j, '}');
    }
    return r;
}

/* Per-tensor checks that need only the tensor: offsets in order and inside the data section, and
 * a byte count that matches the shape. Then the entry can point at its data. */
static int check_span(const rc_st_file *f, rc_st_entry *t, const int64_t off[2],
                      const unsigned char *data, size_t data_len, rc_err *e) {
    char shape[256], name[NAME_TEXT];
    fmt_shape(shape, sizeof shape, t->ndim, t->shape);
    rc_err_text(name, sizeof name, t->name);
    if (off[1] < off[0])
        return rc_err_set(e, "%s: tensor %s: data_offsets [%lld,%lld] end before they begin",
                          f->path, name, (long long)off[0], (long long)off[1]);
    if ((uint64_t)off[1] > data_len)
        return rc_err_set(e, "%s: tensor %s: data_offsets [%lld,%lld] run past the end of the "
                             "%zu-byte data section",
                          f->path, name, (long long)off[0], (long long)off[1], data_len);
    uint64_t bytes;
    if (shape_bytes(t->dtype, t->ndim, t->shape, &bytes) != 0)
        return rc_err_set(e, "%s: tensor %s: shape %s is too large", f->path, name, shape);
    if (bytes != (uint64_t)(off[1] - off[0]))
        return rc_err_set(e, "%s: tensor %s: shape %s of %s needs %llu bytes but data_offsets "
                             "[%lld,%lld] hold %lld",
                          f->path, name, shape, dtypes[t->dtype].name,
                          (unsigned long long)bytes, (long long)off[0], (long long)off[1],
                          (long long)(off[1] - off[0]));
    t->data = data + off[0];
    t->nbytes = (size_t)bytes;
    return 0;
}

/* The header object: tensors and at most one "__metadata__", then only whitespace (the format
 * pads the header with spaces). */
static int parse_header(rc_json *j, rc_st_file *f, const unsigned char *data, size_t data_len) {
    size_t cap = 0;
    int have_meta = 0;
    if (rc_json_expect(j, '{')) return -1;
    int r = rc_json_accept(j, '}') ? 0 : 1;
    while (r == 1) {
        const unsigned char *at = (rc_json_skip_ws(j), j->p);
        char *name;
        if (rc_json_string(j, &name)) return -1;
        if (rc_json_expect(j, ':')) {
            free(name);
            return -1;
        }
        if (strcmp(name, META_KEY) == 0) {
            free(name);
            if (have_meta) {
                j->p = at;
                return rc_json_error(j, "\"" META_KEY "\" given twice");
            }
            have_meta = 1;
            if (parse_meta(j, f)) return -1;
        } else {
            if (f->n == cap) {
                cap = cap ? 2 * cap : 64;
                rc_st_entry *grown = realloc(f->entries, cap * sizeof *grown);
                if (!grown) {
                    free(name);
                    return rc_json_error(j, "out of host memory");
                }
                f->entries = grown;
            }
            rc_st_entry *t = &f->entries[f->n++];
            memset(t, 0, sizeof *t);
            t->name = name;
            int64_t off[2];
            char context[NAME_TEXT + 16], text[NAME_TEXT];
            snprintf(context, sizeof context, "tensor %s", rc_err_text(text, sizeof text, name));
            j->context = context;
            int bad = parse_tensor(j, t, off);
            j->context = NULL;
            if (bad) return -1;
            if (check_span(f, t, off, data, data_len, j->e)) return -1;
        }
        r = rc_json_more(j, '}');
    }
    if (r < 0) return -1;
    rc_json_skip_ws(j);
    if (j->p < j->end) return rc_json_unexpected(j, "only spaces after the header object");
    return 0;
}

/* ---- whole-file checks ----------------------------------------------------------------------- */

static int by_name_cmp(const void *a, const void *b) {
    return strcmp((*(const rc_st_entry *const *)a)->name, (*(const rc_st_entry *const *)b)->name);
}

static int by_offset_cmp(const void *a, const void *b) {
    const rc_st_entry *x = *(const rc_st_entry *const *)a, *y = *(const rc_st_entry *const *)b;
    const unsigned char *px = x->data, *py = y->data;
    if (px != py) return px < py ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int meta_cmp(const void *a, const void *b) {
    return strcmp(((const rc_st_meta_pair *)a)->key, ((const rc_st_meta_pair *)b)->key);
}

/* Metadata keys are sorted for lookups and must differ, also in a file without tensors. Tensor
 * names must differ (checked first: a name given twice for the same bytes is that, not an
 * overlap). Tensors must tile the data section: sorted by offset, each starts where the previous
 * ended, the first at 0 and the last ends at the end. Then by_name is sorted for lookups. */
static int check_layout(rc_st_file *f, const unsigned char *data, size_t data_len, rc_err *e) {
    char name[NAME_TEXT], other[NAME_TEXT];
    if (f->n_meta) {
        qsort(f->meta, f->n_meta, sizeof *f->meta, meta_cmp);
        for (size_t i = 1; i < f->n_meta; i++)
            if (strcmp(f->meta[i - 1].key, f->meta[i].key) == 0)
                return rc_err_set(e, "%s: metadata %s: key given twice", f->path,
                                  rc_err_text(name, sizeof name, f->meta[i].key));
    }
    if (f->n == 0) {
        if (data_len)
            return rc_err_set(e, "%s: %zu bytes of data but no tensors", f->path, data_len);
        return 0;
    }
    f->by_name = malloc(f->n * sizeof *f->by_name);
    if (!f->by_name) return rc_err_set(e, "%s: out of host memory", f->path);
    for (size_t i = 0; i < f->n; i++) f->by_name[i] = &f->entries[i];
    qsort(f->by_name, f->n, sizeof *f->by_name, by_name_cmp);
    for (size_t i = 1; i < f->n; i++)
        if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0)
            return rc_err_set(e, "%s: tensor %s: name given twice", f->path,
                              rc_err_text(name, sizeof name, f->by_name[i]->name));
    qsort(f->by_name, f->n, sizeof *f->by_name, by_offset_cmp);
    size_t expected = 0;
    for (size_t i = 0; i < f->n; i++) {
        const rc_st_entry *t = f->by_name[i];
        size_t begin = (size_t)((const unsigned char *)t->data - data);
        if (begin < expected)
            return rc_err_set(e, "%s: tensor %s: data [%zu,%zu) overlaps tensor %s", f->path,
                              rc_err_text(name, sizeof name, t->name), begin, begin + t->nbytes,
                              rc_err_text(other, sizeof other, f->by_name[i - 1]->name));
        if (begin > expected)
            return rc_err_set(e, "%s: tensor %s: %zu unused bytes before its data [%zu,%zu)",
                              f->path, rc_err_text(name, sizeof name, t->name), begin - expected,
                              begin, begin + t->nbytes);
        expected = begin + t->nbytes;
    }
    if (expected != data_len)
        return rc_err_set(e, "%s: tensor %s: %zu unused bytes after the last tensor", f->path,
                          rc_err_text(name, sizeof name, f->by_name[f->n - 1]->name),
                          data_len - expected);
    qsort(f->by_name, f->n, sizeof *f->by_name, by_name_cmp);
    return 0;
}

/* The whole file at path into a new buffer of *size bytes (at least 1 allocated). */
static int read_all(const char *path, unsigned char **buf, size_t *size, rc_err *e) {
    *buf = NULL;
    *size = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return rc_err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int r = -1;
    if (fstat(fileno(fp), &st) != 0) {
        rc_err_set(e, "%s: cannot stat: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc_err_set(e, "%s: not a regular file", path);
    } else if ((off_t)(size_t)st.st_size != st.st_size) {
        rc_err_set(e, "%s: too large to read into memory", path);
    } else if (!(*buf = malloc(st.st_size ? (size_t)st.st_size : 1))) {
        rc_err_set(e, "%s: out of host memory reading %lld bytes", path, (long long)st.st_size);
    } else {
        *size = fread(*buf, 1, (size_t)st.st_size, fp);
        if (*size == (size_t)st.st_size)
            r = 0;
        else
            rc_err_set(e, "%s: read %zu of %lld bytes%s%s", path, *size, (long long)st.st_size,
                       ferror(fp) ? ": " : " (file shrank)", ferror(fp) ? strerror(errno) : "");
    }
    fclose(fp);
    if (r) {
        free(*buf);
        *buf = NULL;
    }
    return r;
}

static int parse_file(rc_st_file *f, rc_err *e) {
    if (f->size < 8)
        return rc_err_set(e, "%s: %zu bytes, too short for the 8-byte header length", f->path,
                          f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->buf[i];
    if (hlen > f->size - 8)
        return rc_err_set(e, "%s: header length %llu exceeds the %zu bytes after it", f->path,
                          (unsigned long long)hlen, f->size - 8);
    rc_json j;
    rc_json_init(&j, f->buf + 8, (size_t)hlen, f->path, e);
    j.unit = "header byte";
    j.end_name = "the header";
    const unsigned char *data = j.end;
    size_t data_len = f->size - 8 - (size_t)hlen;
    if (parse_header(&j, f, data, data_len)) return -1;
    return check_layout(f, data, data_len, e);
}

int rc_st_open_buffer(rc_st_file *f, const char *name, unsigned char *buf, size_t size,
                      rc_err *e) {
    memset(f, 0, sizeof *f);
    f->buf = buf;
    f->size = size;
    f->path = strdup(name);
    if (!f->path) {
        rc_err_set(e, "%s: out of host memory", name);
    } else if (parse_file(f, e) == 0) {
        return 0;
    }
    rc_st_close(f);
    return -1;
}

int rc_st_open(rc_st_file *f, const char *path, rc_err *e) {
    unsigned char *buf;
    size_t size;
    memset(f, 0, sizeof *f);
    if (read_all(path, &buf, &size, e)) return -1;
    return rc_st_open_buffer(f, path, buf, size, e);
}

void rc_st_close(rc_st_file *f) {
    for (size_t i = 0; i < f->n; i++) free((char *)f->entries[i].name); /* we own the names */
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->entries);
    free(f->by_name);
    free(f->meta);
    free(f->buf);
    free(f->path);
    memset(f, 0, sizeof *f);
}

/* ---- lookups --------------------------------------------------------------------------------- */

size_t rc_st_count(const rc_st_file *f) { return f->n; }

const rc_st_entry *rc_st_entry_at(const rc_st_file *f, size_t i) {
    return i < f->n ? &f->entries[i] : NULL;
}

static int find_cmp(const void *key, const void *elem) {
    return strcmp(key, (*(const rc_st_entry *const *)elem)->name);
}

const rc_st_entry *rc_st_find(const rc_st_file *f, const char *name) {
    if (!f->n) return NULL;
    const rc_st_entry *const *hit = bsearch(name, f->by_name, f->n, sizeof *f->by_name, find_cmp);
    return hit ? *hit : NULL;
}

static int meta_find_cmp(const void *key, const void *elem) {
    return strcmp(key, ((const rc_st_meta_pair *)elem)->key);
}

const char *rc_st_meta(const rc_st_file *f, const char *key) {
    if (!f->n_meta) return NULL;
    const rc_st_meta_pair *hit = bsearch(key, f->meta, f->n_meta, sizeof *f->meta, meta_find_cmp);
    return hit ? hit->value : NULL;
}

static int get_checked(const rc_st_file *f, const char *name, int dtype, int ndim,
                       const int64_t *shape, void *dst, rc_err *e) {
    const rc_st_entry *t = rc_st_find(f, name);
    if (!t) return rc_err_set(e, "%s: tensor %s: not found", f->path, name);
    if (t->dtype != dtype)
        return rc_err_set(e, "%s: tensor %s: dtype %s expected %s", f->path, name,
                          dtypes[t->dtype].name, dtypes[dtype].name);
    /* shape may be NULL for a scalar (ndim 0). */
    if (t->ndim != ndim || (ndim > 0 && memcmp(t->shape, shape, (size_t)ndim * sizeof *shape))) {
        char have[256], want[256];
        fmt_shape(have, sizeof have, t->ndim, t->shape);
        fmt_shape(want, sizeof want, ndim, shape);
        return rc_err_set(e, "%s: tensor %s: shape %s expected %s", f->path, name, have, want);
    }
    if (t->nbytes) memcpy(dst, t->data, t->nbytes);
    return 0;
}

int rc_st_get_f32(const rc_st_file *f, const char *name, int ndim, const int64_t *shape,
                  float *dst, rc_err *e) {
    return get_checked(f, name, RC_ST_F32, ndim, shape, dst, e);
}

int rc_st_get_i64(const rc_st_file *f, const char *name, int ndim, const int64_t *shape,
                  int64_t *dst, rc_err *e) {
    return get_checked(f, name, RC_ST_I64, ndim, shape, dst, e);
}
