#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The module's layers depend one way, top to bottom, without cycles.

entry (rust_dma_heap.rs) > registry.rs > heaps/ > pool.rs > buffer.rs > wrappers/;
inside wrappers/, a file may use only the files listed before it in the
"Files, each using only those before it:" sentence of wrappers/mod.rs's
documentation (and mod.rs itself). A file that names a module of its own
layer or one above (crate::X, super::X, X::...) fails. `crate::LocalModule`
(the crate's THIS_MODULE) is allowed everywhere.

Usage: layers-lint.py REPO   (prints problems; exit 1 when there are any)
"""

import os
import re
import sys

SRC = os.path.join(sys.argv[1], "src")
RANK = {"rust_dma_heap": 5, "registry": 4, "heaps": 3, "pool": 2, "buffer": 1, "wrappers": 0}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def use_paths(text):
    """Every path a file names: `use` trees expanded, plus inline a::b."""
    paths = []

    def expand(prefix, tree):
        tree = tree.strip()
        if not tree:
            return
        depth, start, parts = 0, 0, []
        m = re.match(r"^([\w:]*?)::\{(.*)\}$", tree, re.S)
        if m:
            expand(prefix + m.group(1).split("::"), m.group(2) + ",")
            return
        if "{" in tree or "," in tree:
            for i, c in enumerate(tree):
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                elif c == "," and depth == 0:
                    parts.append(tree[start:i])
                    start = i + 1
            parts.append(tree[start:])
            for p in parts:
                expand(prefix, p)
            return
        paths.append(prefix + re.split(r"\s+as\s+", tree)[0].split("::"))

    for m in re.finditer(r"\buse\s+([^;]+);", text):
        expand([], m.group(1))
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", text):
        paths.append(m.group(1).split("::"))
    return paths


def main():
    mod_rs = open(os.path.join(SRC, "wrappers", "mod.rs")).read()
    doc = " ".join(l[3:].strip() for l in mod_rs.splitlines() if l.startswith("//!"))
    m = re.search(r"Files, each using only those before it[^:]*:(.*?)\.", doc)
    order = re.findall(r"`(\w+)`", m.group(1)) if m else []
    declared = set(re.findall(r"^pub\(crate\) mod (\w+);", mod_rs, re.M))
    if set(order) != declared:
        print(f"wrappers/mod.rs: the order lists {sorted(order)}, the modules are "
              f"{sorted(declared)}")
        return 1
    wrank = {name: i for i, name in enumerate(order)}
    problems = []
    for d, _, files in os.walk(SRC):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(d, f)
            rel = os.path.relpath(path, SRC)
            parts = rel[:-3].split(os.sep)
            layer = parts[0]
            own = RANK[layer]
            text = strip_comments(open(path).read())
            for p in use_paths(text):
                if p[0] == "crate" and len(p) > 1:
                    target = p[1]
                    if target == "LocalModule" or target not in RANK:
                        continue
                    if target == layer and layer == "wrappers" and len(p) > 2:
                        target_w = p[2]
                    elif RANK[target] >= own and not (target == layer == "wrappers"):
                        if target != layer or layer not in ("heaps", "wrappers"):
                            problems.append(f"src/{rel}: uses crate::{'::'.join(p[1:])}, "
                                            f"a layer not below {layer}")
                        continue
                    else:
                        continue
                elif p[0] == "super" and layer == "wrappers" and len(parts) == 2 and len(p) > 1:
                    target_w = p[1]
                else:
                    continue
                # Inside wrappers: only files declared earlier in mod.rs.
                me = parts[1] if len(parts) == 2 else "mod"
                if me == "mod" or target_w not in wrank:
                    continue
                if me in wrank and wrank[target_w] >= wrank[me]:
                    problems.append(f"src/{rel}: uses wrappers::{target_w}, declared "
                                    f"after (or as) {me} in the order of wrappers/mod.rs")
    for p in sorted(set(problems)):
        print(p)
    print(f"{len(set(problems))} layering problems")
    return 1 if problems else 0


sys.exit(main())
