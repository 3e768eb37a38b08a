// SPDX-License-Identifier: GPL-2.0

//! Reading a file into pages a heap has just allocated (`fs/read_write.c`):
//! `vfs_iocb_iter_read()` over a `bio_vec` iterator of the pages, with
//! direct I/O (`IOCB_DIRECT`) where the file takes it, so the bytes go from
//! the device into the pages once, without the page cache.

use super::{fatal_signal_pending, ffi_helpers, pages::PageRuns, Dirty, Loaded};
use core::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use kernel::{
    bindings, container_of, ffi,
    fs::file::LocalFile,
    page::PAGE_SIZE,
    prelude::*,
    sync::{aref::ARef, Completion},
    types::Opaque,
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
    file: ARef<LocalFile>,
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
        // (Used on this thread only, and only at positions of ours: its
        // `f_pos` is never touched.)
        Self::new(LocalFile::fget(fd)?)
    }

    /// A file a kernel caller holds: `EBADF` when it is not open for
    /// reading, `EINVAL` when it is neither a regular file nor a block
    /// device.
    ///
    /// # Safety
    ///
    /// `file` is a valid file the caller holds a reference to for the call.
    pub(crate) unsafe fn from_file(file: *mut bindings::file) -> Result<Self> {
        // SAFETY: valid for the call (the caller's promise); used on this
        // thread only, never its `f_pos`; the reference taken here is ours.
        let file: ARef<LocalFile> = unsafe { ARef::from(LocalFile::from_raw_file(file)) };
        Self::new(file)
    }

    /// What `from_fd` and `from_file` check.
    fn new(file: ARef<LocalFile>) -> Result<Self> {
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

    /// Bytes of the file from `pos` a buffer of `len` bytes holds.
    fn wanted(&self, pos: u64, len: usize) -> usize {
        usize::try_from(self.size.saturating_sub(pos))
            .unwrap_or(usize::MAX)
            .min(len)
    }

    /// Reads the file from `pos` into `runs`, in order: `runs.len()`
    /// bytes, or up to the file's end; every byte not read is zeroed (the
    /// runs need not be zeroed before: only the tail is).
    /// Direct I/O when the file and `pos` allow it (and the file does not
    /// refuse it), else through the page cache. Returns the memory and
    /// what was read. A fatal signal stops it (`EINTR`), as an I/O
    /// error does (that error); the runs are then freed.
    pub(crate) fn load(&self, runs: Dirty<PageRuns>, pos: u64) -> Result<(Loaded<PageRuns>, Read)> {
        let want = self.wanted(pos, runs.len());
        let (read, direct) = self.read_into(&runs, pos, 0, want, self.direct_at(pos))?;
        Ok(Self::finish(runs, read, direct))
    }

    /// As [`Self::load`], for `len` bytes that `alloc` allocates a piece at
    /// a time (at most [`ASYNC_CHUNK`] bytes each): with direct I/O, each
    /// piece's read is in flight while the next is allocated.
    pub(crate) fn load_pieces(
        &self,
        len: usize,
        pos: u64,
        mut alloc: impl FnMut(usize) -> Result<Dirty<PageRuns>>,
    ) -> Result<(Loaded<PageRuns>, Read)> {
        let want = self.wanted(pos, len);
        if !self.direct_at(pos) || want < len.min(ASYNC_CHUNK) {
            // Through the page cache (synchronous), or one piece: nothing
            // to overlap.
            let mut pieces = KVec::new();
            let mut at = 0;
            while at < len {
                let n = ASYNC_CHUNK.min(len - at);
                pieces.push(alloc(n)?, GFP_KERNEL)?;
                at += n;
            }
            return self.load(PageRuns::concat(pieces)?, pos);
        }
        let mut reads = Reads::new(len.div_ceil(ASYNC_CHUNK))?;
        // What the direct reads ask for: whole pages.
        let ask = want.next_multiple_of(PAGE_SIZE).min(len);
        let mut direct = true;
        let mut at = 0;
        while at < len {
            if fatal_signal_pending() {
                // `reads` waits for what is in flight before the pages go.
                return Err(EINTR);
            }
            let n = ASYNC_CHUNK.min(len - at);
            let piece = alloc(n)?;
            let count = ask.saturating_sub(at).min(n);
            if direct && count > 0 {
                match reads.submit(self, &piece, count, pos + at as u64) {
                    Ok(()) => {}
                    // The file's alignment is not met after all: the page
                    // cache for everything, once the pieces are there.
                    Err(e) if e == EINVAL && at == 0 => direct = false,
                    Err(e) => {
                        reads.keep(piece)?;
                        return Err(e);
                    }
                }
            }
            reads.keep(piece)?;
            at += n;
        }
        // Every read done; their bytes in order, to the first short one.
        let done = reads.wait()?;
        let runs = PageRuns::concat(reads.into_pieces())?;
        // A direct read cut short before the file's end (or none made):
        // the rest read synchronously.
        let (read, direct) = if done < want {
            self.read_into(&runs, pos, done, want, direct)?
        } else {
            (done, direct)
        };
        Ok(Self::finish(runs, read, direct))
    }

    /// The loaded memory: bytes `..read` of `runs` read from the file, the
    /// rest zeroed now.
    fn finish(runs: Dirty<PageRuns>, read: usize, direct: bool) -> (Loaded<PageRuns>, Read) {
        let len = runs.len();
        // The rest, and what a direct read may have written past the file's
        // end into the last block.
        // SAFETY: the runs are ours and nobody else has them.
        unsafe { zero_range(&runs, read, len) };
        // INVARIANT: bytes `..read` were read from a file the caller opened
        // for reading (a read writes its bytes from the iterator's start),
        // the rest zeroed just now; nobody else has seen them.
        (
            Loaded(runs.into_inner()),
            Read {
                bytes: read as u64,
                direct,
            },
        )
    }

    /// Reads the file from `pos + from` into `runs` from byte `from`, up to
    /// byte `want` (or the file's end), synchronously, with direct I/O if
    /// `direct` (dropped if the file refuses its alignment at the first
    /// read); returns the end of what was read and whether direct I/O was
    /// used.
    fn read_into(
        &self,
        runs: &Dirty<PageRuns>,
        pos: u64,
        from: usize,
        want: usize,
        mut direct: bool,
    ) -> Result<(usize, bool)> {
        let len = runs.len();
        let mut bv = bio_vecs(runs, 0, len)?;
        let mut read = from;
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
            // is held. Synchronous: done when the call returns.
            let n = unsafe {
                ffi_helpers::rdh_read_bvec(
                    self.file.as_ptr(),
                    core::ptr::null_mut(),
                    None,
                    bv.as_mut_ptr(),
                    // CAST: a count of pieces, at most `len / PAGE_SIZE`.
                    bv.len() as ffi::c_ulong,
                    read,
                    count,
                    at,
                    direct,
                )
            };
            if n == -(bindings::EINVAL as isize) && direct && read == from {
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
        Ok((read.min(want), direct))
    }
}

/// The `bio_vec`s of bytes `from .. to` (page-aligned) of `runs`: pieces
/// of at most [`CHUNK`] bytes, so that a length fits a `bio_vec` and a read
/// can start at a piece.
fn bio_vecs(runs: &PageRuns, from: usize, to: usize) -> Result<KVec<bindings::bio_vec>> {
    let mut bv = KVec::new();
    let mut start = 0;
    for run in runs.runs() {
        let end = start + run.size();
        let mut at = from.max(start);
        while at < to.min(end) {
            let n = CHUNK.min(to.min(end) - at);
            bv.push(
                bindings::bio_vec {
                    bv_page: run.page((at - start) / PAGE_SIZE),
                    // CAST: at most `CHUNK`.
                    bv_len: n as u32,
                    bv_offset: 0,
                },
                GFP_KERNEL,
            )?;
            at += n;
        }
        start = end;
    }
    Ok(bv)
}

/// Bytes of a piece a read is in flight for while the next is allocated.
pub(crate) const ASYNC_CHUNK: usize = 4 << 20;

/// One asynchronous direct read into a piece.
#[pin_data]
struct AsyncRead {
    /// Its kiocb: the file system holds it until `complete`.
    #[pin]
    kiocb: Opaque<bindings::kiocb>,
    /// The piece's pages, which the bios use until completion.
    bv: KVec<bindings::bio_vec>,
    /// Bytes asked for.
    count: usize,
    /// Its result (bytes or -errno), once done.
    res: AtomicIsize,
    /// Where completions are counted.
    reads: *const ReadsState,
}

/// The counter and completion of a [`Reads`].
#[pin_data]
struct ReadsState {
    /// Reads in flight, plus one for the waiter.
    pending: AtomicUsize,
    #[pin]
    done: Completion,
}

/// Direct reads in flight into the pieces of a buffer, and the pieces.
///
/// # Invariants
///
/// Every read of `reads` whose result is not in yet is in flight into
/// pages of a piece of `pieces`, its kiocb and `bio_vec`s pinned where
/// they are; `Drop` waits for all of them before the pieces (and their
/// pages) go. `waited` is set once the waiter's count was given back and
/// every read completed.
struct Reads {
    state: Pin<KBox<ReadsState>>,
    reads: KVec<Pin<KBox<AsyncRead>>>,
    pieces: KVec<Dirty<PageRuns>>,
    waited: bool,
}

impl Reads {
    /// Room for `n` pieces.
    fn new(n: usize) -> Result<Self> {
        Ok(Self {
            state: KBox::pin_init(
                pin_init!(ReadsState {
                    pending: AtomicUsize::new(1),
                    done <- Completion::new(),
                }),
                GFP_KERNEL,
            )?,
            reads: KVec::with_capacity(n, GFP_KERNEL)?,
            pieces: KVec::with_capacity(n, GFP_KERNEL)?,
            waited: false,
        })
    }

    /// Starts the direct read of `count` bytes at `pos` of `source` into
    /// `piece`, which [`Self::keep`] keeps next. A read the file completes
    /// at once is done too.
    fn submit(
        &mut self,
        source: &Source,
        piece: &Dirty<PageRuns>,
        count: usize,
        pos: u64,
    ) -> Result {
        let bv = bio_vecs(piece, 0, count.next_multiple_of(PAGE_SIZE))?;
        let state: *const ReadsState = &*self.state;
        let read = KBox::pin_init(
            pin_init!(AsyncRead {
                kiocb: Opaque::uninit(),
                bv,
                count,
                res: AtomicIsize::new(0),
                reads: state,
            }),
            GFP_KERNEL,
        )?;
        self.reads.push(read, GFP_KERNEL)?;
        let last = self.reads.len() - 1;
        let read = &mut self.reads[last];
        self.state.pending.fetch_add(1, Ordering::AcqRel);
        // SAFETY: the pieces describe pages of `piece`, a new allocation
        // nobody else has, which `self` keeps until the read completed
        // (type invariant); the kiocb and the `bio_vec`s are pinned in
        // `read`, which `self` keeps as long; the file is held by `source`,
        // which outlives `self` (the caller's borrow). `complete` is called
        // once if and only if the call returns `-EIOCBQUEUED`.
        let n = unsafe {
            let r = Pin::get_unchecked_mut(read.as_mut());
            ffi_helpers::rdh_read_bvec(
                source.file.as_ptr(),
                r.kiocb.get(),
                Some(complete),
                r.bv.as_mut_ptr(),
                // CAST: a count of pieces.
                r.bv.len() as ffi::c_ulong,
                0,
                count,
                // CAST: within the file, an `loff_t`.
                pos as i64,
                true,
            )
        };
        if n == -(bindings::EIOCBQUEUED as isize) {
            return Ok(());
        }
        // Done at once: no completion comes.
        read.res.store(n, Ordering::Release);
        self.state.pending.fetch_sub(1, Ordering::AcqRel);
        if n < 0 {
            // Not in flight: forgotten (the caller decides what follows).
            drop(self.reads.pop());
            // CAST: an errno.
            return Err(Error::from_errno(n as i32));
        }
        Ok(())
    }

    /// Keeps `piece` (the next of the buffer) until the reads are done.
    fn keep(&mut self, piece: Dirty<PageRuns>) -> Result {
        // Room for every piece was made in `new`; were it not, a read may
        // be in flight into `piece`: it goes only once all are done.
        if let Err(e) = self.pieces.push_within_capacity(piece) {
            self.wait_all();
            drop(e);
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// Waits for every read; then the bytes read in order, up to the first
    /// read that came back short, or the first error.
    fn wait(&mut self) -> Result<usize> {
        self.wait_all();
        let mut done = 0;
        for read in &self.reads {
            let n = read.res.load(Ordering::Acquire);
            if n < 0 {
                // CAST: an errno.
                return Err(Error::from_errno(n as i32));
            }
            // CAST: non-negative, at most `count`.
            done += n as usize;
            if (n as usize) < read.count {
                break;
            }
        }
        Ok(done)
    }

    fn wait_all(&mut self) {
        if !self.waited {
            if self.state.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
                self.state.done.wait_for_completion();
            }
            // INVARIANT: every read completed.
            self.waited = true;
        }
    }

    /// The pieces, every read done.
    fn into_pieces(mut self) -> KVec<Dirty<PageRuns>> {
        self.wait_all();
        core::mem::take(&mut self.pieces)
    }
}

impl Drop for Reads {
    fn drop(&mut self) {
        // The pages of reads in flight are freed only once they are done.
        self.wait_all();
    }
}

/// The kiocb's completion: the read's result, one read fewer in flight.
///
/// # Safety
///
/// Called by the file system once per read [`Reads::submit`] queued, with
/// its kiocb.
unsafe extern "C" fn complete(kiocb: *mut bindings::kiocb, res: ffi::c_long) {
    // SAFETY: the kiocb is the one in an `AsyncRead` (`Opaque` is
    // transparent), live until every read completed (`Reads`' invariant);
    // its `reads` points to the live state.
    unsafe {
        let read = &*container_of!(kiocb.cast::<Opaque<bindings::kiocb>>(), AsyncRead, kiocb);
        read.res.store(res, Ordering::Release);
        let state = &*read.reads;
        if state.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            state.done.complete_all();
        }
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
