/* libFuzzer target for the IDX reader (src/data/idx.c): each input is written to a
 * private file and read as a gzip or plain IDX file.  Any outcome but a crash, a
 * sanitizer report or a leak of accounted C memory is fine. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../src/data/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[64];
  if (!path[0]) snprintf(path, sizeof path, "/tmp/crater_fuzz_idx.%d", (int)getpid());
  FILE *f = fopen(path, "wb");
  if (f == NULL) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  fclose(f);
  int64_t before = ct_memory().bytes;
  ct_err err;
  ct_tensor *t = ct_idx_read(path, CT_F32, 1.0 / 255, 0, (int64_t)1 << 24, &err);
  ct_tensor_release(t);
  if (ct_memory().bytes != before) {   /* our own accounting: every byte given back */
    fprintf(stderr, "idx_fuzz: %lld bytes leaked\n", (long long)(ct_memory().bytes - before));
    abort();
  }
  return 0;
}
