#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the serial console of a test boot into a verdict.

Reads the log the guest's /init wrote (see initramfs/init): one section per
test program, between "### RDH-BEGIN <name>" and "### RDH-END <name> rc=N",
each holding that program's KTAP output (the END line also says how many
seconds it ran). Prints every result line, a summary
of problems, and a closing line "N passed, N failed". Exits 1 when anything
failed: a "not ok", a missing or short plan, a program that exited non-zero,
a program that never finished, a boot that did not reach its end (crash or
timeout), or a kernel log line that shows a warning, bug, oops or leak.
"""

import argparse
import re
import sys

RESULT = re.compile(r"^(not ok|ok) (\d+)\b(?: -)? ?([^#]*?)\s*(?:#\s*(\S+)(.*))?$")
PLAN = re.compile(r"^1\.\.(\d+)")
BEGIN = re.compile(r"^### RDH-BEGIN (\S+)")
END = re.compile(r"^### RDH-END (\S+) rc=(\d+)")
# Printed by the kernel, never by a passing test.
KERNEL_BAD = re.compile(
    r"WARNING:|BUG:|kernel BUG at|Oops|Call trace|Kernel panic|refcount_t:|"
    r"CFI failure|corrupted shadow stack|Kernel stack overflow|"
    r"unreferenced object|new suspected memory leak|memory leak(?! detector)|KASAN:|UBSAN:|"
    r"possible circular locking|inconsistent lock state|"
    r"sleeping function called from invalid context|list_add corruption|"
    r"list_del corruption|general protection fault|Unable to handle kernel|"
    # A KUnit case failing at any load of the module, not only the last
    # one the kunit program reports.
    r"ASSERTION FAILED at|EXPECTATION FAILED at"
)
# The kernel log prefix, "[   12.345678] ".
KMSG = re.compile(r"^\[\s*\d+\.\d+\]")


class Program:
    def __init__(self, name):
        self.name = name
        self.plan = None
        self.results = {}  # number -> (ok, description, directive)
        self.rc = None


def parse(lines):
    programs = []
    cur = None
    done = False
    kernel_bad = []
    in_dmesg = False
    for raw in lines:
        line = raw.rstrip("\r\n")
        # The console can interleave kernel messages with test output; a
        # kernel message is checked, never parsed as a result.
        stripped = line.strip()
        if KERNEL_BAD.search(line) and (KMSG.match(stripped) or in_dmesg or cur is None):
            kernel_bad.append(stripped)
        if line.startswith("### RDH-DMESG-BEGIN"):
            in_dmesg = True
            continue
        if line.startswith("### RDH-DMESG-END"):
            in_dmesg = False
            continue
        if in_dmesg:
            continue
        if line.startswith("### RDH-DONE"):
            done = True
            continue
        m = BEGIN.match(line)
        if m:
            cur = Program(m.group(1))
            programs.append(cur)
            continue
        m = END.match(line)
        if m and cur is not None and m.group(1) == cur.name:
            cur.rc = int(m.group(2))
            cur = None
            continue
        if cur is None or KMSG.match(stripped):
            continue
        m = PLAN.match(line)
        if m and cur.plan is None:
            cur.plan = int(m.group(1))
            continue
        m = RESULT.match(line)
        if m:
            num = int(m.group(2))
            directive = (m.group(4) or "").upper()
            cur.results[num] = (m.group(1) == "ok", m.group(3).strip(), directive)
    return programs, done, kernel_bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logs", nargs="+", metavar="[LABEL=]LOG",
                    help="serial console log of a test boot (one per boot)")
    ap.add_argument("--expect", action="append", default=[], metavar="[LABEL=]PROGS",
                    help="space-separated programs that must have run in that boot")
    ap.add_argument("--timed-out", action="append", default=[], metavar="LABEL",
                    help="that boot was killed by the runner's timeout")
    args = ap.parse_intermixed_args()

    def split(arg):
        label, sep, rest = arg.partition("=")
        return (label, rest) if sep and "/" not in label and " " not in label else ("", arg)

    expects = dict(split(e) for e in args.expect)
    passed = failed = skipped = 0
    problems = []
    print("TAP version 13")
    for arg in args.logs:
        label, path = split(arg)
        pre = f"{label}/" if label else ""
        with open(path, errors="replace") as f:
            programs, done, kernel_bad = parse(f)

        seen = {p.name for p in programs}
        for name in expects.get(label, "").split():
            if name not in seen:
                failed += 1
                problems.append(f"{pre}{name}: never started")
        for p in programs:
            for num in sorted(p.results):
                ok, desc, directive = p.results[num]
                if directive == "SKIP":
                    skipped += 1
                    print(f"ok {pre}{p.name}:{num} {desc} # SKIP")
                elif ok or directive in ("TODO", "XFAIL"):
                    passed += 1
                    print(f"ok {pre}{p.name}:{num} {desc}")
                else:
                    failed += 1
                    print(f"not ok {pre}{p.name}:{num} {desc}")
            if p.plan is None:
                failed += 1
                problems.append(f"{pre}{p.name}: no KTAP plan")
            elif len(p.results) < p.plan:
                missing = p.plan - len(p.results)
                failed += missing
                problems.append(f"{pre}{p.name}: short plan, {missing} of {p.plan} results missing")
            if p.rc is None:
                failed += 1
                problems.append(f"{pre}{p.name}: did not finish")
            elif p.rc == 4 and p.plan == 0 and not p.results:
                # "1..0 # SKIP": nothing to run here, exit KSFT_SKIP.
                skipped += 1
                print(f"ok {pre}{p.name} # SKIP")
            elif p.rc != 0 and all(ok or d for ok, _, d in p.results.values()) \
                    and p.plan is not None and len(p.results) >= p.plan:
                failed += 1
                problems.append(f"{pre}{p.name}: exited with status {p.rc}")
        if not done:
            failed += 1
            problems.append(f"{pre}the guest did not reach the end of its run"
                            + (" (timeout)" if label in args.timed_out else " (crash?)"))
        if kernel_bad:
            failed += 1
            problems.append(f"{pre}kernel log: {len(kernel_bad)} line(s) of warnings/bugs/leaks")
            for k in kernel_bad[:20]:
                problems.append(f"  {k}")
    for msg in problems:
        print(f"# problem: {msg}")
    if skipped:
        print(f"# {skipped} skipped")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
