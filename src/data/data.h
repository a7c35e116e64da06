/* crater data: file formats read and written in C. The IDX reader (MNIST-style .gz),
 * numeric CSV, and the atomic whole-file writer behind crater.save.  No Lua headers. */
#ifndef CT_DATA_H
#define CT_DATA_H

#include "../core/tensor.h"

/* Reads an IDX file (gzip-compressed or plain; http://yann.lecun.com/exdb/mnist/) of
 * unsigned bytes into a new contiguous tensor of dtype dt whose element is
 * byte * scale + shift; the caller owns it.  The header (magic 0x0000 08 nd, then nd
 * big-endian int32 sizes) is checked before allocating: sizes must be positive and
 * their product at most max_elems; the data must hold exactly that many bytes (a short
 * or a longer file is an error).  Returns NULL with a message naming the file. */
ct_tensor *ct_idx_read(const char *path, ct_dtype dt, double scale, double shift, int64_t max_elems,
                       ct_err *err);

/* Writes len bytes to path through gzip (level 6): a helper for tests that make small
 * IDX files.  Returns 1, or 0 with err. */
int ct_gz_write(const char *path, const void *data, size_t len, ct_err *err);

/* Parses a numeric CSV file (comma separated, '\n' or "\r\n" lines, blank lines
 * ignored) into a new float64 (rows, cols) tensor the caller owns, after skipping
 * 'skip' leading lines.  Every row must have the same number of fields and every field
 * must be a number; the error names the line and column. */
ct_tensor *ct_csv_read(const char *path, int skip, ct_err *err);

/* Replaces path with len bytes so that a crash leaves either the old file or the new
 * one: writes a temporary file in the same directory, flushes and fsyncs it, renames
 * it over path, then fsyncs the directory.  Returns 1, or 0 with err (the temporary
 * file removed). */
int ct_file_write_atomic(const char *path, const void *data, size_t len, ct_err *err);

/* Opens path for reading if it is a regular file (a link to one is followed): a
 * directory, device, FIFO or socket is refused without blocking, naming its kind.
 * Returns the descriptor with *size the file's length, or -1 with err. */
int ct_file_open_read(const char *path, int64_t *size, ct_err *err);

/* Reads up to len bytes of fd (the file path, for messages) at offset into buf (fewer only at the end of the file);
 * *got is the count.  Returns 1, or 0 with err on a read error. */
int ct_file_read_at(int fd, const char *path, void *buf, size_t len, int64_t offset, size_t *got,
                    ct_err *err);

/* "a directory", "a FIFO", ...: the kind of file a stat mode describes, for messages. */
const char *ct_file_kind(unsigned mode);

/* Debugging: the n-th step (n = 0: the next) of kind of ct_file_write_atomic fails once
 * with errno errnum (n < 0: off).  The log lists the steps of the last call, one letter
 * each: w(rite, per MiB), f(lush), s(ync), c(lose), r(ename), d(irectory sync). */
enum { CT_IO_WRITE, CT_IO_FLUSH, CT_IO_FSYNC, CT_IO_CLOSE, CT_IO_RENAME, CT_IO_DIRSYNC, CT_IO_ANY };
void ct_debug_fail_io(int64_t n, int kind, int errnum);
const char *ct_debug_io_log(void);

/* A random permutation of base .. base+n-1 (int64, shape (n)) determined by seed alone;
 * the caller owns it. */
ct_tensor *ct_randperm(int64_t n, uint64_t seed, int64_t base, ct_err *err);

/* ---- foreign tensor files (src/data/raw.c): safetensors, NumPy .npy and .npz members ---- */
/* The element kinds those files hold; each becomes a crater dtype (ct_raw_dtype): floats
 * of 16 and 32 bits become float32, float64 stays, integers and bool become int64. */
typedef enum {
  CT_RAW_BOOL,
  CT_RAW_U8,
  CT_RAW_I8,
  CT_RAW_U16,
  CT_RAW_I16,
  CT_RAW_U32,
  CT_RAW_I32,
  CT_RAW_I64,
  CT_RAW_F16,
  CT_RAW_BF16,
  CT_RAW_F32,
  CT_RAW_F64,
  CT_RAW_COUNT
} ct_raw_kind;
size_t ct_raw_size(ct_raw_kind k);
ct_dtype ct_raw_dtype(ct_raw_kind k);
const char *ct_raw_name(ct_raw_kind k); /* "float16", ... for messages */

/* Where one entry's bytes lie in a file: 'stored' bytes from 'offset', either the bytes
 * themselves or a raw deflate stream (zip method 8) of 'size' bytes.  The first 'skip'
 * uncompressed bytes are not data (a .npy header inside an .npz member); with check_crc
 * the CRC-32 of every uncompressed byte must be crc. */
typedef struct ct_raw_region {
  int64_t offset, stored, size, skip;
  int deflate, check_crc;
  uint32_t crc;
} ct_raw_region;

/* Reads the region's data as a new contiguous tensor of shape (ndim, shape) the caller
 * owns, of kind k (big_endian: the file's byte order; fortran: the bytes are in
 * column-major order).  Before allocating it checks that the region lies in the file and
 * holds exactly skip + numel * size bytes (a deflated region: that its declared size does,
 * and that it is at most zlib's 1032:1 of its stored bytes); after reading, that a deflate
 * stream ends there and the CRC matches.  Returns NULL with a message naming path. */
ct_tensor *ct_raw_read(const char *path, const ct_raw_region *r, ct_raw_kind k, bool big_endian, bool fortran,
                       int ndim, const int64_t *shape, ct_err *err);

/* The first n uncompressed bytes of the region into buf (*got fewer at its end): the
 * header of an .npz member.  Returns 1, or 0 with err. */
int ct_raw_peek(const char *path, const ct_raw_region *r, void *buf, size_t n, size_t *got, ct_err *err);

/* Raw deflate (zip method 8) of len bytes into out, which holds cap >= ct_raw_deflate_bound(len)
 * bytes; *outlen is the count.  Returns 1, or 0 with err. */
size_t ct_raw_deflate_bound(size_t len);
int ct_raw_deflate(const void *data, size_t len, int level, void *out, size_t cap, size_t *outlen,
                   ct_err *err);

#endif
