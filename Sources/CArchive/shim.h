#ifndef DEPLOYCTL_CARCHIVE_SHIM_H
#define DEPLOYCTL_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>

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
