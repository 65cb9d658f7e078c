/*
 * The page that runs between the two kernels when stboot loads with kexec_load(2) (X86BootLoader.cs embeds its
 * assembled bytes; X86BootLoaderTests reassembles this file with clang and compares). relocate_kernel leaves the CPU
 * in 64-bit mode on identity-mapped page tables with interrupts off and the general registers zeroed; the x86 64-bit
 * boot protocol (Documentation/arch/x86/boot.rst) also wants a GDT with flat __BOOT_CS (0x10) and __BOOT_DS (0x18),
 * those selectors loaded, and %rsi = the boot_params address. Unlike the kernel's own purgatory it does not hash the
 * segments again: stboot verified the package signatures before it loaded anything.
 *
 *   clang -c -o trampoline.o trampoline.S && objcopy -O binary -j .text trampoline.o trampoline.bin
 */
    .text
    .code64
    .globl _start
_start:
    lea     gdt(%rip), %rax
    mov     %rax, gdt_base(%rip)
    lgdt    gdt_descriptor(%rip)
    mov     $0x18, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    mov     %eax, %fs
    mov     %eax, %gs
    lea     stack_top(%rip), %rsp
    pushq   $0x10
    lea     reload_cs(%rip), %rax
    pushq   %rax
    lretq
reload_cs:
    mov     boot_params(%rip), %rsi
    xor     %ebp, %ebp
    xor     %edi, %edi
    jmp     *kernel_entry(%rip)

    .balign 16
gdt_descriptor:
    .word   gdt_end - gdt - 1
gdt_base:
    .quad   0
    .balign 16
gdt:
    .quad   0
    .quad   0x00cf9a000000ffff      /* 0x08: flat 32-bit code */
    .quad   0x00af9a000000ffff      /* 0x10: flat 64-bit code, __BOOT_CS */
    .quad   0x00cf92000000ffff      /* 0x18: flat data, __BOOT_DS */
gdt_end:

    .balign 8
boot_params:                        /* patched: physical address of struct boot_params */
    .quad   0
kernel_entry:                       /* patched: physical address of the kernel's 64-bit entry (load address + 0x200) */
    .quad   0
    .balign 16
    .fill   256, 1, 0
stack_top:
