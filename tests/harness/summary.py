#!/usr/bin/python3
"""Add up the results of every suite a run produced and print the closing line.

Reads meson's testlog.json files and pytest's JUnit XML files from one
directory. A suite that ran nothing counts as a failure: a green run must mean
that checks ran.
"""

import glob
import json
import os
import sys
import xml.etree.ElementTree as ET


def meson_counts(path):
    """Checks, not programs: a TAP test counts each of its `ok` lines."""
    passed = failed = skipped = 0
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            out = r.get("stdout") or ""
            oks = sum(1 for l in out.splitlines() if l.startswith("ok "))
            bad = sum(1 for l in out.splitlines() if l.startswith("not ok "))
            if r["result"] == "SKIP":
                skipped += 1
            elif r["result"] == "OK":
                passed += oks or 1
            else:
                passed += oks
                failed += bad or 1
    return passed, failed, skipped


def junit_counts(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    passed = failed = skipped = 0
    for s in suites:
        tests = int(s.get("tests", 0))
        f = int(s.get("failures", 0)) + int(s.get("errors", 0))
        sk = int(s.get("skipped", 0))
        passed += tests - f - sk
        failed += f
        skipped += sk
    return passed, failed, skipped


def main():
    d = sys.argv[1]
    total = [0, 0, 0]
    ok = True
    for path in sorted(glob.glob(os.path.join(d, "*"))):
        name = os.path.basename(path)
        if name.endswith(".json"):
            c = meson_counts(path)
        elif name.endswith(".xml"):
            c = junit_counts(path)
        else:
            continue
        print(f"{name}: {c[0]} passed, {c[1]} failed, {c[2]} skipped")
        if c[0] == 0:
            print(f"{name}: no test ran")
            ok = False
        for i in range(3):
            total[i] += c[i]
    if total[0] + total[1] == 0:
        ok = False
    print(f"{total[0]} passed, {total[1]} failed" + (f", {total[2]} skipped" if total[2] else ""))
    return 0 if ok and total[1] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
