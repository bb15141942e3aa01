/*
 * fuzz.h - shared by the harnesses of tests/fuzz/. Each harness defines
 * LLVMFuzzerTestOneInput(data, size): feed one input to one reader of
 * dgmigrate and free what it returned. A harness never judges the
 * answer (a reader may refuse any input); crashes, leaks, hangs and
 * sanitizer reports are the findings.
 */
#ifndef DGM_FUZZ_H
#define DGM_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "dgm/buf.h"
#include "dgm/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Warnings of the readers would flood the fuzzer's output. */
static inline void fuzz_quiet(void)
{
	dgm_log_set_level(DGM_LOG_ERROR);
}

/* The input as a NUL-terminated string (it may hold NULs too). */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
	return dgm_xstrndup((const char *)data, size);
}

#endif
