#!/usr/bin/python3
"""Scores the default rule pack against the labelled corpus.

usage: tests/corpus/score.py [--chatmon PATH] [--rules DIR] [--corpus FILE] [-v]

Runs `chatmon scan --rules DIR CORPUS` (the corpus lines carry role and text;
scan ignores the extra "expect" key), compares the categories that fired on
each line with the line's "expect", and prints per-category and overall
(micro-averaged) precision and recall. -v also lists every miss and every
false alarm with the rules that fired.

Exit status: 0 when overall precision >= 0.95 and recall >= 0.90, 1 when a
gate fails, 2 when the corpus or chatmon cannot be used.
"""

import argparse
import collections
import json
import os
import subprocess
import sys

MIN_PRECISION = 0.95
MIN_RECALL = 0.90

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))


def load_corpus(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                sys.exit("score: %s:%d: empty line (scan would number lines differently)" % (path, n))
            try:
                o = json.loads(line)
            except ValueError as e:
                print("score: %s:%d: %s" % (path, n, e), file=sys.stderr)
                sys.exit(2)
            if o.get("role") not in ("agent", "customer") or not isinstance(o.get("text"), str) \
                    or not isinstance(o.get("expect"), list):
                print("score: %s:%d: needs role, text and expect" % (path, n), file=sys.stderr)
                sys.exit(2)
            rows.append(o)
    return rows


def scan(chatmon, rules, corpus):
    try:
        p = subprocess.run([chatmon, "scan", "--rules", rules, corpus],
                           capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        print("score: cannot run %s: %s" % (chatmon, e), file=sys.stderr)
        sys.exit(2)
    if p.returncode != 0:
        print("score: chatmon scan failed (%d):\n%s" % (p.returncode, p.stderr), file=sys.stderr)
        sys.exit(2)
    out = {}
    for line in p.stdout.splitlines():
        o = json.loads(line)
        if "error" in o:
            print("score: corpus line %d: %s" % (o["line"], o["error"]), file=sys.stderr)
            sys.exit(2)
        out[o["line"]] = o["hits"]
    return out


def ratio(a, b):
    return a / b if b else 1.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chatmon", default=os.path.join(TOP, "build", "chatmon"))
    ap.add_argument("--rules", default=os.path.join(TOP, "conf", "rules.d"))
    ap.add_argument("--corpus", default=os.path.join(HERE, "messages.jsonl"))
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()

    rows = load_corpus(a.corpus)
    hits = scan(a.chatmon, a.rules, a.corpus)
    if len(hits) != len(rows):
        print("score: %d corpus lines, %d scan results" % (len(rows), len(hits)), file=sys.stderr)
        sys.exit(2)

    tp, fp, fn, support = (collections.Counter() for _ in range(4))
    for i, row in enumerate(rows, 1):
        want = set(row["expect"])
        got = {h["category"] for h in hits[i]}
        for c in want:
            support[c] += 1
        for c in want & got:
            tp[c] += 1
        for c in got - want:
            fp[c] += 1
            if a.verbose:
                print("false alarm  %-14s line %3d %s: %s  <- %s" % (
                    c, i, row["role"], row["text"],
                    ", ".join("%s[%s]" % (h["rule"], h["match"]) for h in hits[i] if h["category"] == c)))
        for c in want - got:
            fn[c] += 1
            if a.verbose:
                print("missed       %-14s line %3d %s: %s" % (c, i, row["role"], row["text"]))

    cats = sorted(set(support) | set(fp))
    print("%-15s %7s %4s %4s %4s %9s %7s" % ("category", "support", "tp", "fp", "fn", "precision", "recall"))
    for c in cats:
        print("%-15s %7d %4d %4d %4d %9.3f %7.3f" % (
            c, support[c], tp[c], fp[c], fn[c], ratio(tp[c], tp[c] + fp[c]), ratio(tp[c], tp[c] + fn[c])))
    T, F, N = sum(tp.values()), sum(fp.values()), sum(fn.values())
    p, r = ratio(T, T + F), ratio(T, T + N)
    clean = sum(1 for row in rows if not row["expect"])
    print("%-15s %7d %4d %4d %4d %9.3f %7.3f" % ("overall", sum(support.values()), T, F, N, p, r))
    print("%d messages (%d clean); gates: precision >= %.2f, recall >= %.2f" % (
        len(rows), clean, MIN_PRECISION, MIN_RECALL))
    if p < MIN_PRECISION or r < MIN_RECALL:
        print("FAIL")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
