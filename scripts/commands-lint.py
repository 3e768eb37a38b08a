#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Every external command the bench's scripts call is provided by set-up.

Parses each host-side shell script under tools/testing/vm/ and .ci/ with
shfmt (its JSON syntax tree), collects the commands they run (through the
wrappers the scripts use: step, exec, env, timeout, xargs, $SUDO) and the
programs the Python scripts start, and checks each against ./requirements.
Each requirements row must name a provider set-up installs or the base
system has (a Debian package of Priority "required").

Usage: commands-lint.py REPO   (prints problems; exit 1 when there are any)
"""

import json
import os
import re
import subprocess
import sys

REPO = sys.argv[1]
SCRIPTS = os.path.join(REPO, "scripts")
REQ = os.path.join(SCRIPTS, "requirements")
SETUP = os.path.join(SCRIPTS, "setup.sh")

# Run inside the guest by busybox, not on the host.
GUEST = {"tools/testing/vm/initramfs/init", "tools/testing/vm/bench/trace.sh",
         "tools/testing/vm/bench/profile.sh"}
# Variables that name a command: what each can hold (lib.sh).
COMMAND_VARS = {
    "CROSS_COMPILE": ["aarch64-linux-gnu-", ""],
    "QEMU": ["qemu-system-aarch64", "qemu-system-x86_64"],
    "LLVM_VER": ["22"],
}
# Variables that name a directory of the project, the kernel tree or the
# bench's work areas: a command under them is a script, not a dependency.
TREE_VARS = {"KSRC", "TREE", "VM", "VM_DIR", "REPO", "WORK", "SHARED", "CACHE", "OUT",
             "KBUILD", "bb_dir", "sample", "st"}
# Commands that run their arguments: how many of those to skip first.
WRAPPERS = {"exec": 0, "command": 0, "xargs": 0, "nice": 0, "sudo": 0, "step": 2,
            "timeout": 1, "env": 0}
IMAGE = {"python3", "rustup"}

problems = []


def builtins():
    out = subprocess.run(["bash", "-c", "compgen -b; compgen -k"], capture_output=True,
                         text=True, check=True).stdout
    return set(out.split())


def word_values(word):
    """The strings a shfmt Word can hold, or None if it is not resolvable.
    A word under a tree variable resolves to "" (a file of ours)."""
    vals = [""]
    for p in word.get("Parts", []):
        t = p.get("Type")
        if t == "DblQuoted":
            sub = word_values({"Parts": p.get("Parts", [])})
            if sub is None:
                return None
            vals = [v + s for v in vals for s in sub]
        elif t in ("Lit", "SglQuoted"):
            vals = [v + p["Value"] for v in vals]
        elif t == "ParamExp":
            name = p["Param"]["Value"]
            if name in TREE_VARS or name == "@":
                return [""]
            if name not in COMMAND_VARS:
                return None
            vals = [v + s for v in vals for s in COMMAND_VARS[name]]
        else:
            return None
    return vals


def raw_text(word):
    """The word's text with expansions written as $NAME (for shapes only)."""
    out = ""
    for p in word.get("Parts", []):
        t = p.get("Type")
        if t == "DblQuoted":
            out += raw_text({"Parts": p.get("Parts", [])})
        elif t in ("Lit", "SglQuoted"):
            out += p["Value"]
        elif t == "ParamExp":
            out += "$" + p["Param"]["Value"]
        else:
            out += "$(...)"
    return out


def is_sudo(word):
    parts = word.get("Parts", [])
    return len(parts) == 1 and parts[0].get("Type") == "ParamExp" and \
        parts[0]["Param"]["Value"] == "SUDO"


def calls(node, out):
    if isinstance(node, dict):
        if node.get("Type") == "CallExpr" and node.get("Args"):
            args = node["Args"]
            i = 0
            while i < len(args):
                if is_sudo(args[i]):
                    i += 1
                    continue
                vals = word_values(args[i])
                name = vals[0] if vals and len(vals) == 1 else None
                if name == "command" and i + 1 < len(args) and \
                        raw_text(args[i + 1]) in ("-v", "-V"):
                    break  # a look-up, not a call
                if name and "/" in name:
                    # ./x, dir/x: a file of the project; /usr/bin/x: x
                    if not name.startswith("/"):
                        break
                    vals = [os.path.basename(name)]
                if name in WRAPPERS:
                    i += 1
                    # options, and env's VAR=value, then the wrapper's own arguments
                    while i < len(args):
                        raw = raw_text(args[i])
                        if raw.startswith("-") or (name == "env" and re.match(r"[\w$]+=", raw)):
                            i += 1
                            continue
                        break
                    i += WRAPPERS[name]
                    continue
                out.append((vals, node["Pos"]["Line"]))
                break
        for v in node.values():
            calls(v, out)
    elif isinstance(node, list):
        for v in node:
            calls(v, out)


def functions(node, out):
    if isinstance(node, dict):
        if node.get("Type") == "FuncDecl":
            out.add(node["Name"]["Value"])
        for v in node.values():
            functions(v, out)
    elif isinstance(node, list):
        for v in node:
            functions(v, out)


def scripts():
    shell, py = [], []
    for top in ("scripts", "tools/testing/vm", ".ci"):
        for d, _, files in os.walk(os.path.join(REPO, top)):
            for f in sorted(files):
                path = os.path.join(d, f)
                rel = os.path.relpath(path, REPO)
                if rel in GUEST:
                    continue
                with open(path, errors="replace") as fh:
                    first = fh.readline()
                if f.endswith(".py"):
                    py.append(rel)
                elif f.endswith(".sh") or re.match(r"#!.*\b(ba)?sh\b", first):
                    shell.append(rel)
    return shell, py


def main():
    req = {}
    for n, line in enumerate(open(REQ), 1):
        if line.startswith("#") or not line.strip():
            continue
        f = line.split()
        if len(f) != 2 or ":" not in f[1]:
            problems.append(f"requirements:{n}: not 'command provider:name': {line.strip()}")
            continue
        req.setdefault(f[0], []).append(f[1])

    shell, py = scripts()
    found = {}
    funcs = set()
    trees = {}
    for rel in shell:
        with open(os.path.join(REPO, rel)) as fh:
            r = subprocess.run(["shfmt", "--to-json"], stdin=fh, capture_output=True,
                               text=True)
        if r.returncode:
            problems.append(f"{rel}: shfmt cannot parse it: {r.stderr.strip()}")
            continue
        trees[rel] = json.loads(r.stdout)
        functions(trees[rel], funcs)
    known = builtins() | funcs
    for rel, tree in trees.items():
        out = []
        calls(tree, out)
        for vals, line in out:
            if vals is None:
                problems.append(f"{rel}:{line}: a command behind a variable the lint cannot "
                                "resolve (add it to COMMAND_VARS or TREE_VARS)")
                continue
            for v in vals:
                if v and v not in known:
                    found.setdefault(v, f"{rel}:{line}")
    for rel in py:
        src = open(os.path.join(REPO, rel)).read()
        for m in re.finditer(r"subprocess\.\w+\(\s*\[\s*[\"']([\w.+-]+)[\"']", src):
            found.setdefault(m.group(1), f"{rel}:{src[:m.start()].count(chr(10)) + 1}")

    for cmd, where in sorted(found.items()):
        if cmd not in req:
            problems.append(f"{where}: calls '{cmd}', which scripts/requirements "
                            "does not list (set-up would not install it)")

    setup = open(SETUP).read()
    for cmd, provs in sorted(req.items()):
        for prov in provs:
            kind, _, name = prov.partition(":")
            if kind in ("apt", "bpo", "rustup"):
                continue  # setup.sh installs every such row (req_rows)
            if kind == "cargo":
                if f"cargo install {name}" not in setup:
                    problems.append(f"requirements: {cmd}: setup.sh does not cargo install {name}")
            elif kind == "image":
                if name not in IMAGE:
                    problems.append(f"requirements: {cmd}: '{name}' is not part of the image")
            elif kind == "base":
                r = subprocess.run(["dpkg-query", "-W", "-f=${Priority}", name],
                                   capture_output=True, text=True)
                prio = r.stdout.strip()
                if not prio:
                    r = subprocess.run(["apt-cache", "show", "--no-all-versions", name],
                                       capture_output=True, text=True)
                    m = re.search(r"^Priority: (\S+)", r.stdout, re.M)
                    prio = m.group(1) if m else "unknown"
                if prio != "required":
                    problems.append(f"requirements: {cmd}: package {name} has priority "
                                    f"'{prio}', not 'required': install it in set-up (apt:)")
            else:
                problems.append(f"requirements: {cmd}: unknown provider kind '{kind}'")
    for needed in ("req_rows apt", "req_rows bpo", "req_rows rustup"):
        if needed not in setup:
            problems.append(f"setup.sh no longer installs the rows of '{needed}'")

    print(f"{len(found)} external commands in {len(shell)} shell and {len(py)} Python scripts; "
          f"{len(req)} rows in requirements")
    for p in problems:
        print(p)
    return 1 if problems else 0


sys.exit(main())
