// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C wrappers for kernel APIs that are inline or macros and so have no
 * symbol the Rust side could call. No logic lives here.
 */
#include <linux/mm.h>

#include "helpers.h"

unsigned long rdh_totalram_pages(void)
{
	return totalram_pages();
}
