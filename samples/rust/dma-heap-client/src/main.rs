// SPDX-License-Identifier: GPL-2.0

//! A client of the dma-heap crate (crates.io), as real applications use it:
//! `Heap::new(HeapKind::System | HeapKind::Cma)` opens
//! `/dev/dma_heap/system` and `/dev/dma_heap/linux,cma`. For each, it
//! allocates a buffer, maps it, checks that it reads as zero, writes a
//! pattern and reads it back. Output is KTAP, one result per heap.

use dma_heap::{Heap, HeapKind};
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};
use std::os::fd::AsFd;

const LEN: usize = 4 << 20;

fn check(kind: HeapKind) -> Result<String, String> {
    let heap = Heap::new(kind).map_err(|e| format!("open: {e}"))?;
    let buf = heap.allocate(LEN).map_err(|e| format!("allocate: {e}"))?;
    // SAFETY: a fresh shared mapping of the whole dma-buf; no other
    // mapping of it exists in this process, and it is unmapped below.
    let ptr = unsafe {
        mmap(
            core::ptr::null_mut(),
            LEN,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            buf.as_fd(),
            0,
        )
    }
    .map_err(|e| format!("mmap: {e}"))?;
    // SAFETY: the mapping is LEN bytes long, readable and writable, and
    // lives until the munmap below.
    let words = unsafe { core::slice::from_raw_parts_mut(ptr.cast::<u32>(), LEN / 4) };
    let result = if let Some(i) = words.iter().position(|&w| w != 0) {
        Err(format!("word {i} is {:#x}, not zero", words[i]))
    } else {
        for (i, w) in words.iter_mut().enumerate() {
            *w = (i as u32).wrapping_mul(2654435761);
        }
        match words
            .iter()
            .enumerate()
            .position(|(i, &w)| w != (i as u32).wrapping_mul(2654435761))
        {
            Some(i) => Err(format!("word {i} reads back wrong")),
            None => Ok(format!("{} bytes zeroed, written, read back", LEN)),
        }
    };
    // SAFETY: unmapping exactly the mapping made above; `words` is dead.
    unsafe { munmap(ptr, LEN) }.map_err(|e| format!("munmap: {e}"))?;
    result
}

fn main() {
    let kinds = [("system", HeapKind::System), ("linux,cma", HeapKind::Cma)];
    println!("TAP version 13");
    println!("1..{}", kinds.len());
    // A heap the machine lacks is skipped, unless the runner knows it has
    // every one (RDH_REQUIRE_HEAPS=1).
    let missing_ok = std::env::var_os("RDH_REQUIRE_HEAPS").is_none_or(|v| v != "1");
    let mut failed = 0;
    for (n, (name, kind)) in kinds.into_iter().enumerate() {
        let node = std::path::Path::new("/dev/dma_heap").join(name);
        if missing_ok && !node.exists() {
            println!(
                "ok {} dma-heap crate on {name} # SKIP no such heap here",
                n + 1
            );
            continue;
        }
        match check(kind) {
            Ok(what) => println!("ok {} dma-heap crate on {name}: {what}", n + 1),
            Err(why) => {
                failed += 1;
                println!("not ok {} dma-heap crate on {name}: {why}", n + 1);
            }
        }
    }
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
