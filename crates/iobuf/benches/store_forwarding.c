/* Store-to-load forwarding on this machine: why BlockRef keeps {start, end}.
 *
 *   gcc -O2 crates/iobuf/benches/store_forwarding.c -o /tmp/store_forwarding
 *   /tmp/store_forwarding
 *
 * Each case is a chain of 2e8 dependent store -> load pairs (the loaded
 * value feeds the next store), so its time per pair is the forwarding
 * latency. A {offset, length} front cut compiled to one 8-byte store, and
 * the next cut loaded `length` alone (case A); see BENCHMARKS.md. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    static uint64_t buf[8] __attribute__((aligned(64)));
    const long n = 200000000;
    uint32_t x = 1;
    uint64_t y = 1;
    double t[5];

    t[0] = now();
    for (long i = 0; i < n; i++) /* A: 8-byte store, 4-byte load of its upper half */
        __asm__ volatile("movq %1,(%2)\n\tmovl 4(%2),%k0"
                         : "=r"(x) : "r"(((uint64_t)x << 32) | x), "r"(buf) : "memory");
    t[1] = now();
    for (long i = 0; i < n; i++) /* B: 8-byte store, 8-byte load */
        __asm__ volatile("movq %1,(%2)\n\tmovq (%2),%0"
                         : "=r"(y) : "r"(y + 1), "r"(buf) : "memory");
    t[2] = now();
    for (long i = 0; i < n; i++) /* C: two 4-byte stores, one 8-byte load over both */
        __asm__ volatile("movl %k1,(%2)\n\tmovl %k1,4(%2)\n\tmovq (%2),%0"
                         : "=r"(y) : "r"(y + 1), "r"(buf) : "memory");
    t[3] = now();
    for (long i = 0; i < n; i++) /* D: 4-byte store, 4-byte load */
        __asm__ volatile("movl %1,(%2)\n\tmovl (%2),%0"
                         : "=r"(x) : "r"(x + 1), "r"(buf) : "memory");
    t[4] = now();

    const char *name[4] = {
        "8 B store, 4 B load of its upper half",
        "8 B store, 8 B load, same address",
        "two 4 B stores, one 8 B load over both",
        "4 B store, 4 B load",
    };
    for (int i = 0; i < 4; i++)
        printf("%-40s %.2f ns per pair\n", name[i], (t[i + 1] - t[i]) / n * 1e9);
    return (int)(x + y) == 42; /* keep the chains live */
}
