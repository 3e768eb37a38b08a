#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Run rustdoc on an out-of-tree Rust module with the exact flags Kbuild gave
rustc (read from the object's .cmd file), private items included, warnings
as errors. The kernel's `make rustdoc` covers only the kernel's own crates.

Usage: rustdoc-module.py OBJ_CMD_FILE OUTPUT_DIR
"""
import os
import shlex
import subprocess
import sys


def main():
    cmdfile, outdir = sys.argv[1], sys.argv[2]
    with open(cmdfile) as f:
        cmd = f.readline().split(":=", 1)[1].strip()
    # Only the compiler's command: Kbuild may chain more (objtool) with ';'.
    lex = shlex.shlex(cmd, posix=True, punctuation_chars=";")
    lex.whitespace_split = True
    toks = []
    for t in lex:
        if t == ";":
            break
        toks.append(t)
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    while "=" in toks[0] and not toks[0].startswith("-"):
        key, val = toks.pop(0).split("=", 1)
        env[key] = val
    args = []
    it = iter(toks[1:])  # past rustc (or clippy-driver)
    for t in it:
        if t == "--out-dir":
            next(it)
            continue
        if t.startswith(("--emit", "--out-dir=", "-Zbinary_dep", "-Zfunction-sections",
                         "-Zllvm_module_flag", "--remap-path", "-Wclippy", "-Aclippy")):
            continue
        args.append(t)
    src = args.pop()
    # A module has no public API: its private items are its documentation.
    r = subprocess.run(["rustdoc", *args, "--document-private-items", "-o", outdir,
                        "-Dwarnings", "-Arustdoc::private_intra_doc_links", src], env=env)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
