# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of rust_dma_heap.ko: `make KDIR=<kernel build dir>`,
# the same as `make -C $KDIR M=$PWD`. Kbuild itself reads ./Kbuild.

KDIR ?= /lib/modules/$(shell uname -r)/build

all: modules

modules modules_install clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $@

# The test bench (QEMU virt/arm64); see README.md.
demo test:
	tools/testing/vm/vmtest $@

.PHONY: all modules modules_install clean demo test
