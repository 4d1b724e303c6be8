/* A libext2fs I/O manager that holds the blocks libext2fs writes (inode
 * tables above all) in memory and writes them out in sorted, coalesced runs.
 *
 * Why: the Unix I/O manager of Debian 12's libext2fs caches 8 blocks, so
 * every few inodes it writes one 4 KiB block back.  Each of those buffered
 * writes takes the image file's inode lock, which the O_DIRECT data writes
 * (writeback.c) hold for as long as the device takes: the ext4 writer spent
 * 0.64 s of a 200,000-file layer blocked there.  Written out 8 MiB at a
 * time, the metadata waits a handful of times instead.
 *
 * Only written blocks are held (a read of a block not held goes to the Unix
 * manager and is not kept), so a block the data path writes past libext2fs
 * can never be served stale from here.  Byte-granular reads and writes (the
 * superblocks), discards and block-size changes write everything held
 * first, so the order of writes to any block is the order libext2fs made
 * them.  The Unix manager underneath caches nothing (see cache_open).
 *
 * Each run written out also has its writeback started (sync_file_range):
 * the device takes the metadata while the build goes on, not all of it at
 * the fsync that ends the build. */
#ifndef SBD_IOCACHE_H
#define SBD_IOCACHE_H

#include <ext2fs/ext2fs.h>

/* Opens the file through unix_io_manager underneath. */
extern io_manager const sbd_iocache_manager;

#endif
