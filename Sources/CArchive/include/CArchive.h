#ifndef DEPLOYCTL_CARCHIVE_H
#define DEPLOYCTL_CARCHIVE_H
#include <archive.h>
#include <archive_entry.h>

/* libarchive is loaded on first use (dlopen), not by the dynamic loader at start-up: it brings libxml2, ICU,
   nettle, zstd, lz4, lzma, bz2 and acl with it, about 2 MiB and 1 ms that every command paid, though only the
   bundle commands use it. Returns NULL once loaded, or why it could not be (what to install). The functions of
   archive.h that deployctl calls forward to the loaded library; archive_read_new, archive_write_new and
   archive_entry_new return NULL when it could not be loaded, and nothing else is reached without them. */
const char *deployctl_archive_load(void);

/* AE_IF* are macros Swift cannot import; give them names. */
static const unsigned int deployctl_AE_IFMT = AE_IFMT;
static const unsigned int deployctl_AE_IFREG = AE_IFREG;
static const unsigned int deployctl_AE_IFLNK = AE_IFLNK;
static const unsigned int deployctl_AE_IFDIR = AE_IFDIR;
static const unsigned int deployctl_AE_IFCHR = AE_IFCHR;
static const unsigned int deployctl_AE_IFBLK = AE_IFBLK;
static const unsigned int deployctl_AE_IFIFO = AE_IFIFO;
static const unsigned int deployctl_AE_IFSOCK = AE_IFSOCK;
#endif
