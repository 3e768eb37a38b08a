// SPDX-License-Identifier: GPL-2.0

//! Reading a file into pages a heap has just allocated (`fs/read_write.c`):
//! `vfs_iocb_iter_read()` over a `bio_vec` iterator of the pages, with
//! direct I/O (`IOCB_DIRECT`) where the file takes it, so the bytes go from
//! the device into the pages once, without the page cache.

use super::{fatal_signal_pending, ffi_helpers, pages::PageRuns, Dirty, Loaded};
use kernel::{
    bindings, ffi,
    fs::{file::LocalFile, File},
    page::PAGE_SIZE,
    prelude::*,
    sync::aref::ARef,
};

/// Bytes per read call: between two calls a fatal signal stops the read.
const CHUNK: usize = 16 << 20;

/// The smallest alignment direct I/O may need of a file offset (a sector);
/// an offset off it is read through the page cache.
const SECTOR: u64 = 512;

/// What a [`Source::load`] read.
#[derive(Clone, Copy, Default)]
pub(crate) struct Read {
    /// Bytes read from the file (the rest of the memory is zero).
    pub(crate) bytes: u64,
    /// They came by direct I/O, bypassing the page cache.
    pub(crate) direct: bool,
}

/// A file the caller opened for reading, taken from one of its fds: a
/// regular file or a block device.
pub(crate) struct Source {
    file: ARef<File>,
    /// Its size when taken (a block device's too).
    size: u64,
    /// It takes direct I/O (`FMODE_CAN_ODIRECT`).
    direct: bool,
}

impl Source {
    /// The file of the caller's `fd`: `EBADF` when `fd` is not open or not
    /// open for reading, `EINVAL` when it is neither a regular file nor a
    /// block device (a pipe, a socket, a directory, a character device).
    pub(crate) fn from_fd(fd: i32) -> Result<Self> {
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        let file = LocalFile::fget(fd)?;
        // SAFETY: called from an ioctl, which does not use `fdget_pos` on
        // this thread; the file is only read at positions of ours (its
        // `f_pos` is never touched).
        let file = unsafe { LocalFile::assume_no_fdget_pos(file) };
        Self::new(file)
    }

    /// A file a kernel caller holds: `EBADF` when it is not open for
    /// reading, `EINVAL` when it is neither a regular file nor a block
    /// device.
    ///
    /// # Safety
    ///
    /// `file` is a valid file the caller holds a reference to for the call.
    pub(crate) unsafe fn from_file(file: *mut bindings::file) -> Result<Self> {
        // SAFETY: valid for the call (the caller's promise); the reference
        // taken here is ours.
        let file: ARef<File> = unsafe { ARef::from(File::from_raw_file(file)) };
        Self::new(file)
    }

    /// What `from_fd` and `from_file` check.
    fn new(file: ARef<File>) -> Result<Self> {
        let (mut size, mut direct) = (0u64, false);
        // SAFETY: a file we hold a reference to.
        let err = unsafe { ffi_helpers::rdh_file_for_read(file.as_ptr(), &mut size, &mut direct) };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        Ok(Self { file, size, direct })
    }

    /// Whether reads of it at `pos` may bypass the page cache.
    pub(crate) fn direct_at(&self, pos: u64) -> bool {
        self.direct && pos % SECTOR == 0
    }

    /// Reads the file from `pos` into `runs`, in order: `runs.len()`
    /// bytes, or up to the file's end; every byte not read is zeroed (the
    /// runs need not be zeroed before: only the tail is).
    /// Direct I/O when the file and `pos` allow it (and the file does not
    /// refuse it), else through the page cache. Returns the memory and
    /// what was read. A fatal signal stops it (`EINTR`), as an I/O
    /// error does (that error); the runs are then freed.
    pub(crate) fn load(&self, runs: Dirty<PageRuns>, pos: u64) -> Result<(Loaded<PageRuns>, Read)> {
        let len = runs.len();
        let in_file = usize::try_from(self.size.saturating_sub(pos)).unwrap_or(usize::MAX);
        let want = in_file.min(len);
        let mut direct = self.direct_at(pos);
        // Pieces of at most `CHUNK` bytes, so that a length fits a
        // `bio_vec` and a read call can start at a piece.
        let mut bv = KVec::new();
        for run in runs.runs() {
            let mut done = 0;
            while done < run.size() {
                let n = CHUNK.min(run.size() - done);
                bv.push(
                    bindings::bio_vec {
                        bv_page: run.page(done / PAGE_SIZE),
                        // CAST: at most `CHUNK`.
                        bv_len: n as u32,
                        bv_offset: 0,
                    },
                    GFP_KERNEL,
                )?;
                done += n;
            }
        }
        let mut read = 0usize;
        // What a direct read asks for: whole pages (the file's end need not
        // be aligned; the read stops there).
        let mut ask = if direct {
            want.next_multiple_of(PAGE_SIZE).min(len)
        } else {
            want
        };
        while read < ask {
            if fatal_signal_pending() {
                return Err(EINTR);
            }
            let count = CHUNK.min(ask - read);
            // CAST: `pos + read` is within the file (`read < want`), whose
            // size is an `loff_t`.
            let at = (pos + read as u64) as i64;
            // SAFETY: the pieces describe pages of `runs`, which we own and
            // nobody else has (a new allocation): the read writes only
            // there, `skip + count` bytes at most (`ask <= len`). The file
            // is held.
            let n = unsafe {
                ffi_helpers::rdh_read_bvec(
                    self.file.as_ptr(),
                    bv.as_mut_ptr(),
                    // CAST: a count of pieces, at most `len / PAGE_SIZE`.
                    bv.len() as ffi::c_ulong,
                    read,
                    count,
                    at,
                    direct,
                )
            };
            if n == -(bindings::EINVAL as isize) && direct && read == 0 {
                // The file's alignment is not met after all: through the
                // page cache, exactly what the file has.
                direct = false;
                ask = want;
                continue;
            }
            if n < 0 {
                // CAST: an errno.
                return Err(Error::from_errno(n as i32));
            }
            if n == 0 {
                // The file ended early (shrank since `from_fd`).
                break;
            }
            // CAST: non-negative, at most `count`.
            read += n as usize;
        }
        let read = read.min(want);
        // The rest, and what a direct read may have written past the file's
        // end into the last block.
        // SAFETY: the runs are ours and nobody else has them.
        unsafe { zero_range(&runs, read, len) };
        // INVARIANT: bytes `..read` were read from a file the caller opened
        // for reading (a read writes its bytes from the iterator's start),
        // the rest zeroed just now; nobody else has seen them.
        Ok((
            Loaded(runs.into_inner()),
            Read {
                bytes: read as u64,
                direct,
            },
        ))
    }
}

/// Zeroes bytes `from .. to` of `runs`.
///
/// # Safety
///
/// The caller owns the runs' memory and nobody else has it.
unsafe fn zero_range(runs: &PageRuns, from: usize, to: usize) {
    let mut start = 0;
    for run in runs.runs() {
        let end = start + run.size();
        let (lo, hi) = (from.max(start), to.min(end));
        let mut at = lo;
        while at < hi {
            let (page, offset) = ((at - start) / PAGE_SIZE, (at - start) % PAGE_SIZE);
            let n = (PAGE_SIZE - offset).min(hi - at);
            // SAFETY: a page of the run, which the caller owns and nobody
            // else has; `offset + n` is within the page.
            unsafe { ffi_helpers::rdh_memzero_page(run.page(page), offset, n) };
            at += n;
        }
        start = end;
    }
}
