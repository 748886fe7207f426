/* Measuring harness: runs every test vector through tmn_invoke and reports over semihosting.
 *
 * Timing uses CMSDK APB timer 0 (0x40000000), clocked at the boards' 25 MHz SYSCLK. QEMU runs with
 * -icount, which advances virtual time by a fixed 2^shift ns per executed instruction, so the ticks
 * between two reads of the timer are a scaled instruction count; the host converts them back.
 * Before each inference the unused stack below SP is painted with a pattern; afterwards the deepest
 * overwritten word gives the peak stack of the call.
 *
 * One line per record, fields separated by spaces:
 *   TMN CAL <empty_ticks> <hook_ticks>            ticks of an empty timer read pair / hook pair
 *   TMN V <vector> <rc> <ticks> <stack_bytes> <wrapped> <overflow> <output hex>
 *   TMN L <vector> <ticks layer 0> <ticks layer 1> ...      (instrumented build only)
 *   TMN END <layer_count> <input_size> <output_size>
 * Built with TMN_INSTRUMENTED=1 the module's layer hooks (tmn_hooks.h) record per-layer ticks.
 */
#include <stdint.h>

#include "semihost.h"
#include "tmn_model.h"

#ifndef TMN_INSTRUMENTED
#define TMN_INSTRUMENTED 0
#endif

#define TMN_TIMER_CTRL (*(volatile uint32_t *)0x40000000u)
#define TMN_TIMER_VALUE (*(volatile uint32_t *)0x40000004u)
#define TMN_TIMER_RELOAD (*(volatile uint32_t *)0x40000008u)
#define TMN_TIMER_INTSTATUS (*(volatile uint32_t *)0x4000000Cu)
#define TMN_STACK_PATTERN 0xA5C3F00Du

extern const int8_t tmn_vectors[][TMN_INPUT_SIZE];
extern const uint32_t tmn_vector_count;
extern uint32_t __stack_limit;

int main(void);

static int8_t tmn_output[TMN_OUTPUT_SIZE];
static char tmn_line[256];
static uint32_t tmn_line_length;

static void out_flush(void)
{
    if (tmn_line_length > 0u) {
        tmn_line[tmn_line_length] = '\0';
        tmn_semihost_write0(tmn_line);
        tmn_line_length = 0u;
    }
}

static void out_char(char c)
{
    if (tmn_line_length + 1u >= sizeof tmn_line) {
        out_flush();
    }
    tmn_line[tmn_line_length++] = c;
}

static void out_str(const char *text)
{
    while (*text != '\0') {
        out_char(*text++);
    }
}

static void out_u32(uint32_t value)
{
    char digits[10];
    uint32_t n = 0u;
    do {
        digits[n++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    out_char(' ');
    while (n > 0u) {
        out_char(digits[--n]);
    }
}

static void out_hex(const int8_t *bytes, uint32_t count)
{
    static const char hex[] = "0123456789abcdef";
    uint32_t i;
    out_char(' ');
    for (i = 0u; i < count; ++i) {
        uint8_t b = (uint8_t)bytes[i];
        out_char(hex[b >> 4]);
        out_char(hex[b & 0xFu]);
    }
}

#if TMN_INSTRUMENTED
static uint32_t tmn_layer_start;
static uint32_t tmn_layer_ticks[TMN_LAYER_COUNT];

__attribute__((noinline)) void tmn_hook_begin(int layer)
{
    (void)layer;
    tmn_layer_start = TMN_TIMER_VALUE;
}

__attribute__((noinline)) void tmn_hook_end(int layer)
{
    uint32_t now = TMN_TIMER_VALUE;
    if (layer >= 0 && layer < TMN_LAYER_COUNT) {
        tmn_layer_ticks[layer] = tmn_layer_start - now;
    }
}
#endif

int main(void)
{
    uint32_t v;
    uint32_t t0;
    uint32_t t1;
    uint32_t hook_ticks = 0u;

    TMN_TIMER_CTRL = 0u;
    TMN_TIMER_RELOAD = 0xFFFFFFFFu;
    TMN_TIMER_VALUE = 0xFFFFFFFFu;
    TMN_TIMER_INTSTATUS = 1u;
    TMN_TIMER_CTRL = 1u;

    t0 = TMN_TIMER_VALUE;
    t1 = TMN_TIMER_VALUE;
#if TMN_INSTRUMENTED
    tmn_hook_begin(0);
    tmn_hook_end(0);
    hook_ticks = tmn_layer_ticks[0];
#endif
    out_str("TMN CAL");
    out_u32(t0 - t1);
    out_u32(hook_ticks);
    out_char('\n');
    out_flush();

    for (v = 0u; v < tmn_vector_count; ++v) {
        uint32_t *paint = &__stack_limit;
        uint32_t sp;
        const uint32_t *probe = &__stack_limit;
        uint32_t wrapped;
        int rc;

#if TMN_INSTRUMENTED
        {
            uint32_t layer;
            for (layer = 0u; layer < TMN_LAYER_COUNT; ++layer) {
                tmn_layer_ticks[layer] = 0u;
            }
        }
#endif
        /* Register-only loop: fill from the stack limit up to the current SP with the pattern.
         * GCC hands inline assembly over in divided syntax; this block is written in unified syntax,
         * which ARMv6-M (Thumb-1) needs for the flag-setting forms. */
        __asm__ volatile(
            ".syntax unified\n\t"
            "mov %[sp], sp\n"
            "1:\n\t"
            "cmp %[p], %[sp]\n\t"
            "bhs 2f\n\t"
            "str %[pattern], [%[p]]\n\t"
            "adds %[p], %[p], #4\n\t"
            "b 1b\n"
            "2:\n"
            : [p] "+l"(paint), [sp] "=&l"(sp)
            : [pattern] "l"(TMN_STACK_PATTERN)
            : "cc", "memory");
        TMN_TIMER_INTSTATUS = 1u;
        t0 = TMN_TIMER_VALUE;
        rc = tmn_invoke(tmn_vectors[v], tmn_output);
        t1 = TMN_TIMER_VALUE;
        wrapped = TMN_TIMER_INTSTATUS & 1u;
        while ((uintptr_t)probe < sp && *probe == TMN_STACK_PATTERN) {
            ++probe;
        }

        out_str("TMN V");
        out_u32(v);
        out_u32((uint32_t)rc);
        out_u32(t0 - t1);
        out_u32(sp - (uint32_t)(uintptr_t)probe);
        out_u32(wrapped);
        out_u32(probe == &__stack_limit ? 1u : 0u);
        out_hex(tmn_output, TMN_OUTPUT_SIZE);
        out_char('\n');
#if TMN_INSTRUMENTED
        {
            uint32_t layer;
            out_str("TMN L");
            out_u32(v);
            for (layer = 0u; layer < TMN_LAYER_COUNT; ++layer) {
                out_u32(tmn_layer_ticks[layer]);
            }
            out_char('\n');
        }
#endif
        out_flush();
    }
    out_str("TMN END");
    out_u32(TMN_LAYER_COUNT);
    out_u32(TMN_INPUT_SIZE);
    out_u32(TMN_OUTPUT_SIZE);
    out_char('\n');
    out_flush();
    return 0;
}
