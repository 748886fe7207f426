/* Minimal bare-metal startup for the QEMU MPS2 boards (AN385, AN386, AN500).
 *
 * The vector table sits at address 0 (ZBT SSRAM1, where QEMU looks for the initial stack pointer and
 * reset vector). The reset handler copies .data from its load address, zeroes .bss, enables the FPU
 * when the build uses one, and runs main(); its return value becomes the emulator's exit status over
 * semihosting. Every fault or unexpected exception reports its exception number and stops QEMU with a
 * non-zero status, so a crash never looks like a hang or a success. Only ARMv6-M instructions are
 * used, so the same file serves Cortex-M0+ builds.
 */
#include <stdint.h>

#include "semihost.h"

extern uint32_t __data_load;
extern uint32_t __data_start;
extern uint32_t __data_end;
extern uint32_t __bss_start;
extern uint32_t __bss_end;
extern uint32_t __stack_top;

int main(void);
void tmn_reset_handler(void);
void tmn_fault_handler(void);

#define TMN_CPACR (*(volatile uint32_t *)0xE000ED88u)

void tmn_reset_handler(void)
{
    const uint32_t *src = &__data_load;
    uint32_t *dst = &__data_start;
    while (dst < &__data_end) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start; dst < &__bss_end;) {
        *dst++ = 0u;
    }
#if defined(__ARM_FP)
    /* Full access to CP10 and CP11 (the FPU), then make sure later instructions see it. */
    TMN_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    tmn_semihost_exit(main());
}

void tmn_fault_handler(void)
{
    static char message[] = "TMN FAULT 000\n";
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    ipsr &= 0x1FFu;
    message[10] = (char)('0' + ipsr / 100u);
    message[11] = (char)('0' + ipsr / 10u % 10u);
    message[12] = (char)('0' + ipsr % 10u);
    tmn_semihost_write0(message);
    tmn_semihost_exit(1);
}

/* Initial SP, reset, then NMI, HardFault, MemManage, BusFault, UsageFault, 4 reserved, SVCall,
 * DebugMonitor, reserved, PendSV, SysTick: everything but reset lands in the fault handler. */
__attribute__((section(".vectors"), used)) static const uintptr_t tmn_vectors_table[16] = {
    (uintptr_t)&__stack_top,
    (uintptr_t)tmn_reset_handler,
    (uintptr_t)tmn_fault_handler,
    (uintptr_t)tmn_fault_handler,
    (uintptr_t)tmn_fault_handler,
    (uintptr_t)tmn_fault_handler,
    (uintptr_t)tmn_fault_handler,
    0u,
    0u,
    0u,
    0u,
    (uintptr_t)tmn_fault_handler,
    (uintptr_t)tmn_fault_handler,
    0u,
    (uintptr_t)tmn_fault_handler,
    (uintptr_t)tmn_fault_handler,
};
