/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Thin C wrappers for kernel APIs that are inline or macros and so have no
 * symbol the Rust side could call. No logic lives here.
 */
#ifndef RUST_DMA_HEAP_HELPERS_H
#define RUST_DMA_HEAP_HELPERS_H

unsigned long rdh_totalram_pages(void);

#endif /* RUST_DMA_HEAP_HELPERS_H */
