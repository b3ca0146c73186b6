#include "ramp/dataset.h"
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* ---- generated files ------------------------------------------------------------------------ */

/* buf to path, gzip-compressed when gz */
static void write_maybe_gz(const char *path, int gz, const uint8_t *buf, size_t len) {
    if (!gz) {
        write_bytes(path, buf, len);
        return;
    }
    gzFile f = gzopen(path, "wb");
    ck_assert_msg(f != NULL, "gzopen %s", path);
    if (len) ck_assert_int_eq(gzwrite(f, buf, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(f), Z_OK);
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Contents of the generated IDX files: every pixel differs from its neighbours. */
static uint8_t idx_pixel(uint32_t i, uint32_t y, uint32_t x) {
    return (uint8_t)(i * 37 + y * 11 + x * 3 + 1);
}
static uint8_t idx_label(uint32_t i) { return (uint8_t)((i * 7 + 3) % 10); }

/* The first len+delta bytes of the file (delta < 0 cuts, delta > 0 appends garbage). */
static void write_cut(const char *path, int gz, uint8_t *full, size_t len, long delta) {
    size_t n = (size_t)((long)len + delta);
    uint8_t *buf = realloc(full, n ? n : 1);
    ck_assert_ptr_nonnull(buf);
    if (n > len) memset(buf + len, 0xab, n - len);
    write_maybe_gz(path, gz, buf, n);
    free(buf);
}

static void write_images(const char *path, int gz, uint32_t magic, uint32_t n, uint32_t h,
                         uint32_t w, long delta) {
    size_t len = 16 + (size_t)n * h * w;
    uint8_t *buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    put32(buf, magic);
    put32(buf + 4, n);
    put32(buf + 8, h);
    put32(buf + 12, w);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++)
                buf[16 + ((size_t)i * h + y) * w + x] = idx_pixel(i, y, x);
    write_cut(path, gz, buf, len, delta);
}

static void write_labels(const char *path, int gz, uint32_t n, long delta) {
    uint8_t *buf = malloc(8 + n);
    ck_assert_ptr_nonnull(buf);
    put32(buf, 0x801);
    put32(buf + 4, n);
    for (uint32_t i = 0; i < n; i++) buf[8 + i] = idx_label(i);
    write_cut(path, gz, buf, 8 + n, delta);
}

static void check_idx(const rc_dataset *d, uint32_t n, uint32_t h, uint32_t w) {
    ck_assert_uint_eq(d->n, n);
    ck_assert_uint_eq(d->c, 1);
    ck_assert_uint_eq(d->h, h);
    ck_assert_uint_eq(d->w, w);
    ck_assert_uint_eq(d->num_classes, 10);
    for (uint32_t i = 0; i < n; i++) {
        ck_assert_uint_eq(d->labels[i], idx_label(i));
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++)
                ck_assert_uint_eq(d->pixels[((size_t)i * h + y) * w + x], idx_pixel(i, y, x));
    }
}

/* A failed load: -1, a message naming `path` and containing `what`, and *d left empty. */
static void expect_fail(int rc, const rc_err *e, const rc_dataset *d, const char *path,
                        const char *what) {
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(e->msg, path) != NULL, "message does not name %s: %s", path, e->msg);
    ck_assert_msg(strstr(e->msg, what) != NULL, "message lacks '%s': %s", what, e->msg);
    ck_assert_ptr_null(d->pixels);
    ck_assert_ptr_null(d->labels);
}

/* Paths of an image and a label file in a fresh directory. */
typedef struct idx_files {
    char dir[512], images[600], labels[600];
} idx_files;

static void idx_files_make(idx_files *f) {
    test_tmpdir(f->dir, sizeof f->dir, "dataset");
    snprintf(f->images, sizeof f->images, "%s/images", f->dir);
    snprintf(f->labels, sizeof f->labels, "%s/labels", f->dir);
}

/* Loading f's files (first_k points) fails, naming path and saying what. */
static void idx_fails(const idx_files *f, uint32_t first_k, const char *path, const char *what) {
    rc_dataset d;
    rc_err e;
    expect_fail(rc_dataset_load_idx(&d, f->images, f->labels, first_k, &e), &e, &d, path, what);
}

/* ---- IDX ------------------------------------------------------------------------------------ */

START_TEST(idx_raw_and_gzip_load_every_pixel) {
    idx_files f;
    idx_files_make(&f);
    for (int gz = 0; gz < 4; gz++) {
        write_images(f.images, gz & 1, 0x803, 7, 5, 3, 0);
        write_labels(f.labels, gz >> 1, 7, 0);
        rc_dataset d;
        rc_err e;
        ck_assert_msg(rc_dataset_load_idx(&d, f.images, f.labels, 0, &e) == 0, "%s", e.msg);
        check_idx(&d, 7, 5, 3);
        ck_assert_str_eq(d.name, "images");
        rc_dataset_free(&d);
        ck_assert_ptr_null(d.pixels);
    }
    remove_tree(f.dir);
}
END_TEST

START_TEST(idx_first_k) {
    idx_files f;
    idx_files_make(&f);
    write_images(f.images, 1, 0x803, 7, 5, 3, 0);
    write_labels(f.labels, 0, 7, 0);
    rc_dataset d;
    rc_err e;
    ck_assert_msg(rc_dataset_load_idx(&d, f.images, f.labels, 3, &e) == 0, "%s", e.msg);
    check_idx(&d, 3, 5, 3);
    rc_dataset_free(&d);
    ck_assert_msg(rc_dataset_load_idx(&d, f.images, f.labels, 7, &e) == 0, "%s", e.msg);
    check_idx(&d, 7, 5, 3);
    rc_dataset_free(&d);
    idx_fails(&f, 8, f.images, "first 8 images but the file holds 7");
    remove_tree(f.dir);
}
END_TEST

START_TEST(idx_truncated_header) {
    idx_files f;
    idx_files_make(&f);
    for (int gz = 0; gz < 2; gz++) {
        write_images(f.images, gz, 0x803, 7, 5, 3, -(16 + 105 - 10));
        write_labels(f.labels, gz, 7, 0);
        idx_fails(&f, 0, f.images, "truncated: 10 bytes");
        write_images(f.images, gz, 0x803, 7, 5, 3, 0);
        write_labels(f.labels, gz, 7, -(8 + 7 - 5));
        idx_fails(&f, 0, f.labels, "truncated: 5 bytes");
        /* An empty file too. */
        write_labels(f.labels, gz, 7, -(8 + 7));
        idx_fails(&f, 0, f.labels, "truncated: 0 bytes");
    }
    remove_tree(f.dir);
}
END_TEST

START_TEST(idx_truncated_data) {
    idx_files f;
    idx_files_make(&f);
    for (int gz = 0; gz < 2; gz++) {
        write_images(f.images, gz, 0x803, 7, 5, 3, -4);
        write_labels(f.labels, gz, 7, 0);
        idx_fails(&f, 0, f.images,
                  "truncated: header says 7 images of 5x3 (105 bytes) but the file holds 101");
        /* Also when only the first points are kept: the whole file is checked. */
        idx_fails(&f, 2, f.images, "but the file holds 101");
        write_images(f.images, gz, 0x803, 7, 5, 3, 0);
        write_labels(f.labels, gz, 7, -1);
        idx_fails(&f, 0, f.labels, "header says 7 labels (7 bytes) but the file holds 6");
    }
    remove_tree(f.dir);
}
END_TEST

START_TEST(idx_trailing_garbage) {
    idx_files f;
    idx_files_make(&f);
    for (int gz = 0; gz < 2; gz++) {
        write_images(f.images, gz, 0x803, 7, 5, 3, 3);
        write_labels(f.labels, gz, 7, 0);
        idx_fails(&f, 0, f.images, "3 bytes of trailing data");
        write_images(f.images, gz, 0x803, 7, 5, 3, 0);
        write_labels(f.labels, gz, 7, 1);
        idx_fails(&f, 0, f.labels, "1 bytes of trailing data");
    }
    remove_tree(f.dir);
}
END_TEST

START_TEST(idx_wrong_magic_and_dims) {
    idx_files f;
    idx_files_make(&f);
    rc_dataset d;
    rc_err e;
    write_images(f.images, 0, 0x803, 7, 5, 3, 0);
    write_labels(f.labels, 1, 7, 0);
    /* The files swapped. */
    expect_fail(rc_dataset_load_idx(&d, f.labels, f.images, 0, &e), &e, &d, f.labels,
                "magic 0x00000801, want 0x00000803 (this is a label file)");
    expect_fail(rc_dataset_load_idx(&d, f.images, f.images, 0, &e), &e, &d, f.images,
                "magic 0x00000803, want 0x00000801 (this is an image file)");
    /* Float pixels (type 0x0d). */
    write_images(f.images, 0, 0xd03, 7, 5, 3, 0);
    idx_fails(&f, 0, f.images, "not an IDX image file: magic 0x00000d03");
    write_images(f.images, 1, 0x803, 7, 0, 3, 0);
    idx_fails(&f, 0, f.images, "zero dimension");
    remove_tree(f.dir);
}
END_TEST

START_TEST(idx_count_mismatch) {
    idx_files f;
    idx_files_make(&f);
    rc_dataset d;
    rc_err e;
    write_images(f.images, 0, 0x803, 7, 5, 3, 0);
    write_labels(f.labels, 0, 6, 0);
    expect_fail(rc_dataset_load_idx(&d, f.images, f.labels, 0, &e), &e, &d, f.images,
                "holds 7 images but");
    ck_assert_msg(strstr(e.msg, f.labels) && strstr(e.msg, "holds 6 labels"), "%s", e.msg);
    remove_tree(f.dir);
}
END_TEST

START_TEST(idx_label_out_of_range) {
    idx_files f;
    idx_files_make(&f);
    write_images(f.images, 0, 0x803, 3, 2, 2, 0);
    uint8_t labels[8 + 3];
    put32(labels, 0x801);
    put32(labels + 4, 3);
    labels[8] = 9;
    labels[9] = 10;
    labels[10] = 0;
    write_maybe_gz(f.labels, 1, labels, sizeof labels);
    idx_fails(&f, 0, f.labels, "label 10 of point 1 is out of range");
    /* Checked also past first_k. */
    idx_fails(&f, 1, f.labels, "label 10 of point 1");
    remove_tree(f.dir);
}
END_TEST

START_TEST(idx_missing_and_corrupt_gzip) {
    idx_files f;
    idx_files_make(&f);
    rc_dataset d;
    rc_err e;
    write_labels(f.labels, 0, 40, 0);
    idx_fails(&f, 0, f.images, "cannot open: No such file");
    expect_fail(rc_dataset_load_idx(&d, f.dir, f.labels, 0, &e), &e, &d, f.dir, "cannot read");

    /* The compressed stream cut in half. */
    write_images(f.images, 1, 0x803, 40, 28, 28, 0);
    struct stat st;
    ck_assert_int_eq(stat(f.images, &st), 0);
    ck_assert_int_eq(truncate(f.images, st.st_size / 2), 0);
    expect_fail(rc_dataset_load_idx(&d, f.images, f.labels, 0, &e), &e, &d, f.images,
                "truncated: header says 40 images of 28x28 (31360 bytes)");
    ck_assert_msg(strstr(e.msg, "(decompressed)"), "%s", e.msg);

    /* A damaged byte in the middle of the stream. */
    write_images(f.images, 1, 0x803, 40, 28, 28, 0);
    ck_assert_int_eq(stat(f.images, &st), 0);
    FILE *fp = fopen(f.images, "r+b");
    ck_assert_ptr_nonnull(fp);
    uint8_t *gz = malloc((size_t)st.st_size);
    ck_assert_uint_eq(fread(gz, 1, (size_t)st.st_size, fp), (size_t)st.st_size);
    gz[st.st_size / 2] ^= 0x55;
    rewind(fp);
    ck_assert_uint_eq(fwrite(gz, 1, (size_t)st.st_size, fp), (size_t)st.st_size);
    ck_assert_int_eq(fclose(fp), 0);
    free(gz);
    ck_assert_int_eq(rc_dataset_load_idx(&d, f.images, f.labels, 0, &e), -1);
    ck_assert_msg(strstr(e.msg, f.images) != NULL, "%s", e.msg);
    remove_tree(f.dir);
}
END_TEST

START_TEST(mnist_dir_finds_raw_and_gzip_files) {
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "mnist");
    rc_dataset d;
    rc_err e;
    expect_fail(rc_dataset_load_mnist_dir(&d, dir, 1, 0, &e), &e, &d, dir,
                "neither train-images-idx3-ubyte nor train-images-idx3-ubyte.gz");
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_images(path, 1, 0x803, 7, 4, 6, 0);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    write_labels(path, 0, 7, 0);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    write_images(path, 0, 0x803, 4, 4, 6, 0);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    write_labels(path, 1, 4, 0);

    ck_assert_msg(rc_dataset_load_mnist_dir(&d, dir, 1, 0, &e) == 0, "%s", e.msg);
    check_idx(&d, 7, 4, 6);
    ck_assert_msg(strstr(d.name, "-train") && !strchr(d.name, '/'), "name %s", d.name);
    rc_dataset_free(&d);
    ck_assert_msg(rc_dataset_load_mnist_dir(&d, dir, 0, 2, &e) == 0, "%s", e.msg);
    check_idx(&d, 2, 4, 6);
    ck_assert_msg(strstr(d.name, "-test") != NULL, "name %s", d.name);
    rc_dataset_free(&d);
    /* Errors name the file found. */
    expect_fail(rc_dataset_load_mnist_dir(&d, dir, 0, 5, &e), &e, &d, "t10k-images-idx3-ubyte",
                "first 5 images but the file holds 4");
    remove_tree(dir);
}
END_TEST

START_TEST(real_fashion_mnist_if_installed) {
    if (access(FASHION_DIR, R_OK) != 0) {
        printf("note: %s is absent (Debian package dataset-fashion-mnist): real-data test "
               "skipped\n",
               FASHION_DIR);
        return;
    }
    const uint32_t want_n[2] = {10000, 60000};
    for (int train = 0; train < 2; train++) {
        rc_dataset d;
        rc_err e;
        ck_assert_msg(rc_dataset_load_mnist_dir(&d, FASHION_DIR, train, 0, &e) == 0, "%s", e.msg);
        ck_assert_uint_eq(d.n, want_n[train]);
        ck_assert_uint_eq(d.c, 1);
        ck_assert_uint_eq(d.h, 28);
        ck_assert_uint_eq(d.w, 28);
        /* Fashion-MNIST is balanced: a tenth of the points in each class. */
        uint32_t count[10] = {0};
        for (uint32_t i = 0; i < d.n; i++) {
            ck_assert_uint_lt(d.labels[i], 10);
            count[d.labels[i]]++;
        }
        for (int c = 0; c < 10; c++) ck_assert_uint_eq(count[c], d.n / 10);
        uint64_t sum = 0;
        for (size_t i = 0; i < (size_t)d.n * 784; i++) sum += d.pixels[i];
        ck_assert_uint_gt(sum, 0);
        rc_dataset_free(&d);
    }
}
END_TEST

/* ---- CIFAR-10 ------------------------------------------------------------------------------- */

static uint8_t cifar_pixel(uint32_t g, uint32_t p) { return (uint8_t)(g * 13 + p * 7 + 5); }
static uint8_t cifar_label(uint32_t g) { return (uint8_t)((g * 3 + 1) % 10); }

/* Records first..first+count-1 of the generated set, then `extra` bytes. */
static void write_cifar(const char *dir, const char *file, uint32_t first, uint32_t count,
                        size_t extra) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    size_t len = (size_t)count * 3073 + extra;
    uint8_t *buf = calloc(len ? len : 1, 1);
    ck_assert_ptr_nonnull(buf);
    for (uint32_t r = 0; r < count; r++) {
        buf[(size_t)r * 3073] = cifar_label(first + r);
        for (uint32_t p = 0; p < 3072; p++)
            buf[(size_t)r * 3073 + 1 + p] = cifar_pixel(first + r, p);
    }
    write_bytes(path, buf, len);
    free(buf);
}

static void check_cifar(const rc_dataset *d, uint32_t first, uint32_t n) {
    ck_assert_uint_eq(d->n, n);
    ck_assert_uint_eq(d->c, 3);
    ck_assert_uint_eq(d->h, 32);
    ck_assert_uint_eq(d->w, 32);
    ck_assert_uint_eq(d->num_classes, 10);
    for (uint32_t i = 0; i < n; i++) {
        ck_assert_uint_eq(d->labels[i], cifar_label(first + i));
        for (uint32_t p = 0; p < 3072; p++)
            ck_assert_uint_eq(d->pixels[(size_t)i * 3072 + p], cifar_pixel(first + i, p));
    }
}

static const uint32_t cifar_counts[5] = {3, 1, 2, 4, 2};

static void write_cifar_train(const char *dir) {
    char file[32];
    for (uint32_t i = 0, first = 0; i < 5; first += cifar_counts[i], i++) {
        snprintf(file, sizeof file, "data_batch_%u.bin", i + 1);
        write_cifar(dir, file, first, cifar_counts[i], 0);
    }
}

START_TEST(cifar_loads_every_pixel_in_file_order) {
    char dir[512];
    test_tmpdir(dir, sizeof dir, "cifar");
    write_cifar_train(dir);
    write_cifar(dir, "test_batch.bin", 100, 5, 0);
    rc_dataset d;
    rc_err e;
    ck_assert_msg(rc_dataset_load_cifar10(&d, dir, 1, 0, &e) == 0, "%s", e.msg);
    check_cifar(&d, 0, 12);
    ck_assert_msg(strstr(d.name, "-train") != NULL, "name %s", d.name);
    rc_dataset_free(&d);
    ck_assert_msg(rc_dataset_load_cifar10(&d, dir, 0, 0, &e) == 0, "%s", e.msg);
    check_cifar(&d, 100, 5);
    rc_dataset_free(&d);
    /* first_k across file boundaries. */
    ck_assert_msg(rc_dataset_load_cifar10(&d, dir, 1, 5, &e) == 0, "%s", e.msg);
    check_cifar(&d, 0, 5);
    rc_dataset_free(&d);
    expect_fail(rc_dataset_load_cifar10(&d, dir, 1, 13, &e), &e, &d, dir,
                "first 13 images but data_batch_1.bin..data_batch_5.bin hold 12");
    remove_tree(dir);
}
END_TEST

START_TEST(cifar_bad_files_are_named) {
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "cifar");
    rc_dataset d;
    rc_err e;
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    expect_fail(rc_dataset_load_cifar10(&d, dir, 1, 0, &e), &e, &d, path, "No such file");

    write_cifar_train(dir);
    write_cifar(dir, "data_batch_3.bin", 4, 2, 100);
    snprintf(path, sizeof path, "%s/data_batch_3.bin", dir);
    expect_fail(rc_dataset_load_cifar10(&d, dir, 1, 0, &e), &e, &d, path,
                "6246 bytes are 2 whole 3073-byte records (1 label + 3072 pixels) and 100 bytes");
    write_cifar(dir, "data_batch_3.bin", 4, 0, 0);
    expect_fail(rc_dataset_load_cifar10(&d, dir, 1, 0, &e), &e, &d, path, "0 bytes are 0 whole");

    write_cifar_train(dir);
    snprintf(path, sizeof path, "%s/data_batch_5.bin", dir);
    ck_assert_int_eq(unlink(path), 0);
    expect_fail(rc_dataset_load_cifar10(&d, dir, 1, 0, &e), &e, &d, path, "No such file");

    write_cifar(dir, "test_batch.bin", 0, 3, 0);
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 3073 * 2, SEEK_SET), 0);
    ck_assert_int_eq(fputc(10, f), 10);
    ck_assert_int_eq(fclose(f), 0);
    expect_fail(rc_dataset_load_cifar10(&d, dir, 0, 0, &e), &e, &d, path,
                "label 10 of record 2 is out of range");

    /* a directory where a batch file should be: said so, not counted as records */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    expect_fail(rc_dataset_load_cifar10(&d, dir, 0, 0, &e), &e, &d, path,
                "a directory, not a CIFAR-10 binary batch");
    ck_assert_int_eq(rmdir(path), 0);
    remove_tree(dir);
}
END_TEST

/* ---- batches -------------------------------------------------------------------------------- */

/* n images of c x h x w; pixel 0 of image i is i, so a batch tells which points it holds. */
static rc_dataset make_dataset(uint32_t n, uint32_t c, uint32_t h, uint32_t w) {
    rc_dataset d = {.n = n, .c = c, .h = h, .w = w, .num_classes = 10};
    size_t image = (size_t)c * h * w;
    d.pixels = malloc(n * image);
    d.labels = malloc(n);
    ck_assert_ptr_nonnull(d.pixels);
    ck_assert_ptr_nonnull(d.labels);
    for (uint32_t i = 0; i < n; i++) {
        for (size_t p = 0; p < image; p++) d.pixels[i * image + p] = (uint8_t)(i + p * 5);
        d.labels[i] = (uint8_t)(i % 10);
    }
    snprintf(d.name, sizeof d.name, "generated");
    return d;
}

/* Runs `epoch` to its end; order[k] receives the k-th point visited. Returns how many. */
static uint32_t run_epoch(rc_batcher *b, uint32_t epoch, uint32_t *order) {
    const rc_dataset *d = b->d;
    size_t image = (size_t)d->c * d->h * d->w;
    float *x = malloc(b->batch_size * image * sizeof *x);
    int32_t *y = malloc(b->batch_size * sizeof *y);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    rc_batcher_start_epoch(b, epoch);
    uint32_t total = 0, got, batches = 0;
    while ((got = rc_batcher_next(b, x, y)) > 0) {
        batches++;
        ck_assert_uint_le(got, b->batch_size);
        for (uint32_t i = 0; i < got; i++) {
            uint32_t idx = (uint32_t)(x[i * image] * 255.0f + 0.5f);
            ck_assert_uint_lt(idx, d->n);
            ck_assert_int_eq(y[i], d->labels[idx]);
            order[total++] = idx;
        }
    }
    ck_assert_uint_eq(batches, rc_batcher_num_batches(b));
    ck_assert_uint_eq(rc_batcher_next(b, x, y), 0);
    free(x);
    free(y);
    return total;
}

START_TEST(batcher_visits_every_point_once_with_short_last_batch) {
    rc_dataset d = make_dataset(37, 1, 2, 2);
    rc_batcher b;
    rc_err e;
    ck_assert_msg(rc_batcher_init(&b, &d, 8, 42, 1, 0, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(rc_batcher_num_batches(&b), 5);
    float x[8 * 4];
    int32_t y[8];
    const uint32_t sizes[] = {8, 8, 8, 8, 5, 0, 0};
    for (int i = 0; i < 7; i++) ck_assert_uint_eq(rc_batcher_next(&b, x, y), sizes[i]);
    uint32_t order[37];
    for (uint32_t epoch = 0; epoch < 4; epoch++) {
        ck_assert_uint_eq(run_epoch(&b, epoch, order), 37);
        int seen[37] = {0}, moved = 0;
        for (uint32_t i = 0; i < 37; i++) {
            ck_assert_int_eq(seen[order[i]]++, 0);
            moved += order[i] != i;
        }
        ck_assert_int_gt(moved, 0);
    }
    rc_batcher_free(&b);
    /* An exact multiple has no short batch. */
    ck_assert_msg(rc_batcher_init(&b, &d, 37, 42, 1, 0, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(rc_batcher_num_batches(&b), 1);
    ck_assert_uint_eq(run_epoch(&b, 0, order), 37);
    rc_batcher_free(&b);
    ck_assert_int_eq(rc_batcher_init(&b, &d, 0, 42, 1, 0, &e), -1);
    ck_assert_msg(strstr(e.msg, "batch size") != NULL, "%s", e.msg);
    rc_dataset_free(&d);
}
END_TEST

START_TEST(batcher_order_depends_on_seed_and_epoch_only) {
    rc_dataset d = make_dataset(50, 1, 1, 3);
    rc_batcher a, b, c, plain;
    rc_err e;
    ck_assert_msg(rc_batcher_init(&a, &d, 7, 1234, 1, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_batcher_init(&b, &d, 7, 1234, 1, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_batcher_init(&c, &d, 7, 1235, 1, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_batcher_init(&plain, &d, 7, 1234, 0, 0, &e) == 0, "%s", e.msg);
    uint32_t oa[50], ob[50], oc[50];
    /* a runs epochs 0..3, b starts at 3 as a resumed run would. */
    for (uint32_t epoch = 0; epoch <= 3; epoch++) run_epoch(&a, epoch, oa);
    run_epoch(&b, 3, ob);
    ck_assert_mem_eq(oa, ob, sizeof oa);
    run_epoch(&b, 4, ob);
    ck_assert_int_ne(memcmp(oa, ob, sizeof oa), 0);
    run_epoch(&c, 3, oc);
    ck_assert_int_ne(memcmp(oa, oc, sizeof oa), 0);
    for (uint32_t epoch = 0; epoch < 3; epoch++) {
        run_epoch(&plain, epoch, oa);
        for (uint32_t i = 0; i < 50; i++) ck_assert_uint_eq(oa[i], i);
    }
    rc_batcher_free(&a);
    rc_batcher_free(&b);
    rc_batcher_free(&c);
    rc_batcher_free(&plain);
    rc_dataset_free(&d);
}
END_TEST

START_TEST(pixels_scale_to_unit_interval) {
    rc_dataset d = make_dataset(3, 1, 16, 16);
    for (uint32_t p = 0; p < 256; p++) d.pixels[256 + p] = (uint8_t)p;
    float x[3 * 256];
    int32_t y[3];
    rc_batcher b;
    rc_err e;
    ck_assert_msg(rc_batcher_init(&b, &d, 3, 7, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(rc_batcher_next(&b, x, y), 3);
    for (uint32_t i = 0; i < 3 * 256; i++) ck_assert_float_eq(x[i], d.pixels[i] / 255.0f);
    ck_assert_float_eq(x[256], 0.0f);
    ck_assert_float_eq(x[511], 1.0f);
    for (uint32_t i = 0; i < 3; i++) ck_assert_int_eq(y[i], d.labels[i]);
    rc_batcher_free(&b);

    /* Slices: file order, the same scaling, bounds checked. */
    ck_assert_int_eq(rc_dataset_slice(&d, 1, 2, x, y), 0);
    for (uint32_t i = 0; i < 2 * 256; i++) ck_assert_float_eq(x[i], d.pixels[256 + i] / 255.0f);
    ck_assert_int_eq(y[0], 1);
    ck_assert_int_eq(y[1], 2);
    ck_assert_int_eq(rc_dataset_slice(&d, 3, 0, x, y), 0);
    ck_assert_int_eq(rc_dataset_slice(&d, 2, 2, x, y), -1);
    ck_assert_int_eq(rc_dataset_slice(&d, 4, 0, x, y), -1);
    ck_assert_int_eq(rc_dataset_slice(&d, 1, UINT32_MAX, x, y), -1);
    rc_dataset_free(&d);
}
END_TEST

/* The crop and flip as torchvision defines them, written independently of the loader: pad with
 * zeros, take the window at (dy, dx), then mirror the columns. */
static void expected_crop(const rc_dataset *d, const uint8_t *img, uint32_t dy, uint32_t dx,
                          int flip, float *out) {
    const uint32_t pad = 4, ph = d->h + 2 * pad, pw = d->w + 2 * pad;
    uint8_t *padded = calloc((size_t)d->c * ph * pw, 1);
    ck_assert_ptr_nonnull(padded);
    for (uint32_t ch = 0; ch < d->c; ch++)
        for (uint32_t y = 0; y < d->h; y++)
            for (uint32_t x = 0; x < d->w; x++)
                padded[((size_t)ch * ph + y + pad) * pw + x + pad] =
                    img[((size_t)ch * d->h + y) * d->w + x];
    for (uint32_t ch = 0; ch < d->c; ch++)
        for (uint32_t i = 0; i < d->h; i++)
            for (uint32_t j = 0; j < d->w; j++) {
                uint32_t cj = flip ? d->w - 1 - j : j;
                out[((size_t)ch * d->h + i) * d->w + j] =
                    padded[((size_t)ch * ph + i + dy) * pw + cj + dx] / 255.0f;
            }
    free(padded);
}

START_TEST(crop_flip_is_a_shifted_mirrored_copy) {
    /* Channel 0 holds 1 + row, channel 1 holds 1 + column, channel 2 the point's index: no
     * two placements give the same output, and padding (0) is told apart from the image. */
    enum { N = 4, C = 3, H = 32, W = 32, IMG = C * H * W, DRAWS = 50 };
    rc_dataset d = make_dataset(N, C, H, W);
    for (uint32_t i = 0; i < N; i++)
        for (uint32_t y = 0; y < H; y++)
            for (uint32_t x = 0; x < W; x++) {
                uint8_t *p = d.pixels + (size_t)i * IMG + y * W + x;
                p[0] = (uint8_t)(1 + y);
                p[H * W] = (uint8_t)(1 + x);
                p[2 * H * W] = (uint8_t)(100 + i);
            }
    rc_batcher a, b;
    rc_err e;
    ck_assert_msg(rc_batcher_init(&a, &d, N, 99, 1, 1, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_batcher_init(&b, &d, N, 99, 1, 1, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(a.pad, 4);
    static float xa[N * IMG], xb[N * IMG], want[IMG];
    int32_t ya[N], yb[N];
    int flips[2] = {0}, offsets[9][9] = {{0}};
    for (uint32_t epoch = 0; epoch < DRAWS; epoch++) {
        rc_batcher_start_epoch(&a, epoch);
        ck_assert_uint_eq(rc_batcher_next(&a, xa, ya), N);
        for (uint32_t k = 0; k < N; k++) {
            uint32_t idx = (uint32_t)(xa[k * IMG + 2 * H * W + 15 * W + 15] * 255.0f + 0.5f) - 100;
            ck_assert_uint_lt(idx, N);
            ck_assert_int_eq(ya[k], d.labels[idx]);
            int matches = 0;
            for (uint32_t dy = 0; dy < 9; dy++)
                for (uint32_t dx = 0; dx < 9; dx++)
                    for (int flip = 0; flip < 2; flip++) {
                        expected_crop(&d, d.pixels + (size_t)idx * IMG, dy, dx, flip, want);
                        if (memcmp(want, xa + k * IMG, sizeof want) == 0) {
                            matches++;
                            flips[flip]++;
                            offsets[dy][dx]++;
                        }
                    }
            ck_assert_msg(matches == 1, "epoch %u point %u: %d placements match", epoch, k,
                          matches);
        }
        /* The augmentation is reproducible from (seed, epoch) too. */
        rc_batcher_start_epoch(&b, epoch);
        ck_assert_uint_eq(rc_batcher_next(&b, xb, yb), N);
        ck_assert_mem_eq(xa, xb, sizeof xa);
    }
    int distinct = 0;
    for (int dy = 0; dy < 9; dy++)
        for (int dx = 0; dx < 9; dx++) distinct += offsets[dy][dx] > 0;
    ck_assert_int_gt(flips[0], 0);
    ck_assert_int_gt(flips[1], 0);
    ck_assert_int_ge(distinct, 20);
    ck_assert_int_gt(offsets[0][0] + offsets[8][8] + offsets[0][8] + offsets[8][0] + offsets[4][0] +
                         offsets[0][4] + offsets[8][4] + offsets[4][8],
                     0);
    rc_batcher_free(&a);
    rc_batcher_free(&b);
    rc_dataset_free(&d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("dataset");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, idx_raw_and_gzip_load_every_pixel);
    tcase_add_test(tc, idx_first_k);
    tcase_add_test(tc, idx_truncated_header);
    tcase_add_test(tc, idx_truncated_data);
    tcase_add_test(tc, idx_trailing_garbage);
    tcase_add_test(tc, idx_wrong_magic_and_dims);
    tcase_add_test(tc, idx_count_mismatch);
    tcase_add_test(tc, idx_label_out_of_range);
    tcase_add_test(tc, idx_missing_and_corrupt_gzip);
    tcase_add_test(tc, mnist_dir_finds_raw_and_gzip_files);
    tcase_add_test(tc, real_fashion_mnist_if_installed);
    tcase_add_test(tc, cifar_loads_every_pixel_in_file_order);
    tcase_add_test(tc, cifar_bad_files_are_named);
    tcase_add_test(tc, batcher_visits_every_point_once_with_short_last_batch);
    tcase_add_test(tc, batcher_order_depends_on_seed_and_epoch_only);
    tcase_add_test(tc, pixels_scale_to_unit_interval);
    tcase_add_test(tc, crop_flip_is_a_shifted_mirrored_copy);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
