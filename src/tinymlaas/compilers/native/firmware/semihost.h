/* ARM semihosting calls used by the measuring firmware.
 *
 * QEMU traps "bkpt 0xAB" on M-profile cores when started with -semihosting-config enable=on and
 * performs the request in r0 with the argument in r1. Only two requests are needed: writing a
 * NUL-terminated string to the host's console and stopping the emulator with an exit status.
 */
#ifndef TMN_SEMIHOST_H
#define TMN_SEMIHOST_H

#include <stdint.h>

#define TMN_SYS_WRITE0 0x04
#define TMN_SYS_EXIT 0x18
/* Stop reasons for SYS_EXIT on 32-bit targets: QEMU exits with status 0 for the first, 1 otherwise. */
#define TMN_ADP_APPLICATION_EXIT 0x20026
#define TMN_ADP_RUNTIME_ERROR 0x20023

static inline uint32_t tmn_semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static inline void tmn_semihost_write0(const char *text)
{
    (void)tmn_semihost(TMN_SYS_WRITE0, text);
}

static inline void tmn_semihost_exit(int status)
{
    uint32_t reason = status == 0 ? TMN_ADP_APPLICATION_EXIT : TMN_ADP_RUNTIME_ERROR;
    (void)tmn_semihost(TMN_SYS_EXIT, (const void *)reason);
    for (;;) {
    }
}

#endif
