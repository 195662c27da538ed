#include "CArchive.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

/* Each function deployctl calls, by name; the definitions below must match archive.h's declarations (the compiler
   checks them against it). */
#define ARCHIVE_SYMBOLS(X)                                                                                            \
    X(archive_entry_atime) X(archive_entry_atime_is_set) X(archive_entry_atime_nsec) X(archive_entry_clear)           \
    X(archive_entry_filetype) X(archive_entry_free) X(archive_entry_hardlink) X(archive_entry_mtime)                  \
    X(archive_entry_mtime_is_set) X(archive_entry_mtime_nsec) X(archive_entry_new) X(archive_entry_pathname)          \
    X(archive_entry_pathname_utf8) X(archive_entry_perm) X(archive_entry_set_filetype) X(archive_entry_set_mtime)     \
    X(archive_entry_set_pathname) X(archive_entry_set_perm) X(archive_entry_set_size) X(archive_entry_set_symlink)    \
    X(archive_entry_size) X(archive_entry_size_is_set) X(archive_entry_symlink) X(archive_error_string)               \
    X(archive_filter_code) X(archive_format) X(archive_read_data) X(archive_read_data_block)                          \
    X(archive_read_data_skip) X(archive_read_free) X(archive_read_new) X(archive_read_next_header)                    \
    X(archive_read_open_filename) X(archive_read_support_filter_all) X(archive_read_support_format_gnutar)            \
    X(archive_read_support_format_tar) X(archive_read_support_format_zip) X(archive_write_add_filter_gzip)            \
    X(archive_write_close) X(archive_write_data) X(archive_write_free) X(archive_write_header) X(archive_write_new)   \
    X(archive_write_open_filename) X(archive_write_set_format_pax_restricted) X(archive_write_set_format_zip)

#define DECLARE(name) static __typeof__(&name) real_##name;
ARCHIVE_SYMBOLS(DECLARE)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512];
static int loaded;

static void load(void) {
    void *library = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(failure, sizeof failure, "cannot load libarchive (%s); on Debian or Ubuntu: apt-get install libarchive13",
                 dlerror());
        return;
    }
#define RESOLVE(name)                                                                                                 \
    real_##name = (__typeof__(&name))dlsym(library, #name);                                                           \
    if (!real_##name) {                                                                                               \
        snprintf(failure, sizeof failure, "the installed libarchive has no %s; deployctl needs libarchive 3.4 or later", \
                 #name);                                                                                              \
        return;                                                                                                       \
    }
    ARCHIVE_SYMBOLS(RESOLVE)
    loaded = 1;
}

const char *deployctl_archive_load(void) {
    pthread_once(&once, load);
    return loaded ? NULL : failure;
}

struct archive *archive_read_new(void) { return deployctl_archive_load() ? NULL : real_archive_read_new(); }
struct archive *archive_write_new(void) { return deployctl_archive_load() ? NULL : real_archive_write_new(); }
struct archive_entry *archive_entry_new(void) { return deployctl_archive_load() ? NULL : real_archive_entry_new(); }

#define FORWARD(type, name, parameters, arguments) \
    type name parameters { return real_##name arguments; }

FORWARD(time_t, archive_entry_atime, (struct archive_entry *e), (e))
FORWARD(int, archive_entry_atime_is_set, (struct archive_entry *e), (e))
FORWARD(long, archive_entry_atime_nsec, (struct archive_entry *e), (e))
FORWARD(struct archive_entry *, archive_entry_clear, (struct archive_entry *e), (e))
FORWARD(__LA_MODE_T, archive_entry_filetype, (struct archive_entry *e), (e))
void archive_entry_free(struct archive_entry *e) { real_archive_entry_free(e); }
FORWARD(const char *, archive_entry_hardlink, (struct archive_entry *e), (e))
FORWARD(time_t, archive_entry_mtime, (struct archive_entry *e), (e))
FORWARD(int, archive_entry_mtime_is_set, (struct archive_entry *e), (e))
FORWARD(long, archive_entry_mtime_nsec, (struct archive_entry *e), (e))
FORWARD(const char *, archive_entry_pathname, (struct archive_entry *e), (e))
FORWARD(const char *, archive_entry_pathname_utf8, (struct archive_entry *e), (e))
FORWARD(__LA_MODE_T, archive_entry_perm, (struct archive_entry *e), (e))
void archive_entry_set_filetype(struct archive_entry *e, unsigned int type) { real_archive_entry_set_filetype(e, type); }
void archive_entry_set_mtime(struct archive_entry *e, time_t s, long ns) { real_archive_entry_set_mtime(e, s, ns); }
void archive_entry_set_pathname(struct archive_entry *e, const char *p) { real_archive_entry_set_pathname(e, p); }
void archive_entry_set_perm(struct archive_entry *e, __LA_MODE_T m) { real_archive_entry_set_perm(e, m); }
void archive_entry_set_size(struct archive_entry *e, la_int64_t s) { real_archive_entry_set_size(e, s); }
void archive_entry_set_symlink(struct archive_entry *e, const char *t) { real_archive_entry_set_symlink(e, t); }
FORWARD(la_int64_t, archive_entry_size, (struct archive_entry *e), (e))
FORWARD(int, archive_entry_size_is_set, (struct archive_entry *e), (e))
FORWARD(const char *, archive_entry_symlink, (struct archive_entry *e), (e))
FORWARD(const char *, archive_error_string, (struct archive *a), (a))
FORWARD(int, archive_filter_code, (struct archive *a, int n), (a, n))
FORWARD(int, archive_format, (struct archive *a), (a))
FORWARD(la_ssize_t, archive_read_data, (struct archive *a, void *b, size_t n), (a, b, n))
FORWARD(int, archive_read_data_block, (struct archive *a, const void **b, size_t *n, la_int64_t *o), (a, b, n, o))
FORWARD(int, archive_read_data_skip, (struct archive *a), (a))
FORWARD(int, archive_read_free, (struct archive *a), (a))
FORWARD(int, archive_read_next_header, (struct archive *a, struct archive_entry **e), (a, e))
FORWARD(int, archive_read_open_filename, (struct archive *a, const char *f, size_t n), (a, f, n))
FORWARD(int, archive_read_support_filter_all, (struct archive *a), (a))
FORWARD(int, archive_read_support_format_gnutar, (struct archive *a), (a))
FORWARD(int, archive_read_support_format_tar, (struct archive *a), (a))
FORWARD(int, archive_read_support_format_zip, (struct archive *a), (a))
FORWARD(int, archive_write_add_filter_gzip, (struct archive *a), (a))
FORWARD(int, archive_write_close, (struct archive *a), (a))
FORWARD(la_ssize_t, archive_write_data, (struct archive *a, const void *b, size_t n), (a, b, n))
FORWARD(int, archive_write_free, (struct archive *a), (a))
FORWARD(int, archive_write_header, (struct archive *a, struct archive_entry *e), (a, e))
FORWARD(int, archive_write_open_filename, (struct archive *a, const char *f), (a, f))
FORWARD(int, archive_write_set_format_pax_restricted, (struct archive *a), (a))
FORWARD(int, archive_write_set_format_zip, (struct archive *a), (a))
