/* guard_page.h — for the unit suites: place an input so that its last byte is the last
 * readable byte before a PROT_NONE page, so a decoder reading even one byte past the
 * length it was given faults, with or without ASan.
 *
 * Header-only, because each suite is built from its one .c file. Call guard_init() in
 * main() before the runner starts (forked tests then share the mapping); guard_place()
 * copies an input to the end of the readable area, remapping a larger one when the input
 * does not fit. Each placement overwrites the one before; guard_end() is the guard page.
 */
#ifndef USPRELAY_TEST_GUARD_PAGE_H
#define USPRELAY_TEST_GUARD_PAGE_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUARD_DATA_PAGES 16 /* readable pages mapped by guard_init() */

static struct {
    uint8_t *data; /* readable area; the page after it is PROT_NONE */
    size_t len;
    size_t page;
} guard_area;

/* Map READABLE bytes (a multiple of the page size) followed by a PROT_NONE page.
 * NULL on failure. */
static inline uint8_t *guard_map(size_t readable)
{
    uint8_t *m = mmap(NULL, readable + guard_area.page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    if (mprotect(m + readable, guard_area.page, PROT_NONE) != 0) {
        munmap(m, readable + guard_area.page);
        return NULL;
    }
    return m;
}

/* Outside any test, so a failure ends the program (exit status 2). */
static inline void guard_init(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    guard_area.page = ps > 0 ? (size_t)ps : 4096u;
    guard_area.len = guard_area.page * GUARD_DATA_PAGES;
    guard_area.data = guard_map(guard_area.len);
    if (!guard_area.data) {
        perror("guard_init");
        exit(2);
    }
}

/* Copy N bytes of SRC so that they end right before the guard page; returns the copy.
 * SRC may lie in the area itself (an earlier placement). */
static inline const uint8_t *guard_place(const void *src, size_t n)
{
    ck_assert_msg(guard_area.data != NULL, "guard_init() was not called");
    if (n > guard_area.len) {
        size_t readable = (n + guard_area.page - 1) / guard_area.page * guard_area.page;
        uint8_t *m = guard_map(readable);
        ck_assert_ptr_ne(m, NULL);
        memcpy(m + readable - n, src, n); /* before SRC's mapping may go */
        ck_assert_int_eq(munmap(guard_area.data, guard_area.len + guard_area.page), 0);
        guard_area.data = m;
        guard_area.len = readable;
        return m + readable - n;
    }
    uint8_t *dst = guard_area.data + guard_area.len - n;
    if (n > 0)
        memmove(dst, src, n);
    return dst;
}

/* The first byte past the readable area (the guard page itself): where a span of an
 * empty input placed last points. */
static inline const uint8_t *guard_end(void)
{
    return guard_area.data + guard_area.len;
}

#endif
