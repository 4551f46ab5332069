#!/usr/bin/python3
"""Measures the rule pack on the labelled corpus: precision, recall and the
clean rate per category and per evasion kind, on the dev part (tuned on)
and on the frozen blind test part (never tuned on).

usage: tests/corpus/eval.py [--chatmon PATH] [--rules DIR] [--model FILE]
                            [--part dev|test|all] [-v] [--json FILE]

Each part is a directory of JSON Lines files (tests/corpus/dev/,
tests/corpus/test/); a line is {"id","role","text","expect":[categories],
"kind","near","platform","conv"?} (tests/corpus/README.md). Lines that share
a "conv" are one conversation, in order: they go through `chatmon scan` as
turns of it, so rules over a window of turns (docs/rules.md) see them.

The figures (docs/rules.md defines them):
  recall     of the lines that break category C, the share on which C fired
  precision  of the lines on which C fired, the share that break C
  clean      of the innocent lines (expect []), the share on which C did not
             fire; "all" is the share on which nothing fired
  near-clean of the innocent lines written as near misses for C, the share
             on which C did not fire (the strictest view)
  block-clean of the lines, the share on which no blocking rule fired for a
             category the line does not break

-v lists the dev part's misses and false alarms with the rules that fired.
The test part's lines are never listed: looking at them would make it a
dev part (write a fresh one instead).

Exit status: 0 when the test part meets the targets (recall >= 95 %, clean
>= 98 % per category, block-clean >= 99.5 %), 1 when it does not, 2 when the
corpus or chatmon cannot be used. --part dev always exits 0 or 2.
"""

import argparse
import collections
import hashlib
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CATEGORIES = ["offplatform", "invoice", "returns", "stock", "review_bait", "payment",
              "order_close", "privacy", "etiquette", "abuse", "ad_law",
              "complaint_risk", "extortion"]
TARGET_RECALL, TARGET_CLEAN, TARGET_BLOCK = 0.95, 0.98, 0.995


def load_part(d):
    rows = []
    for name in sorted(os.listdir(d)):
        if not name.endswith(".jsonl"):
            continue
        path = os.path.join(d, name)
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    o = json.loads(line)
                except ValueError as e:
                    sys.exit(f"eval: {path}:{n}: {e}")
                if o.get("role") not in ("agent", "customer") or \
                        not isinstance(o.get("text"), str) or \
                        not isinstance(o.get("expect"), list):
                    sys.exit(f"eval: {path}:{n}: needs role, text and expect")
                o["_where"] = f"{name}:{n}"
                rows.append(o)
    return rows


def check_frozen(d):
    """The test part must match its recorded hashes (SHA256SUMS beside it)."""
    sums = os.path.join(d, "SHA256SUMS")
    if not os.path.exists(sums):
        return
    with open(sums) as f:
        for line in f:
            want, name = line.split()
            with open(os.path.join(d, name), "rb") as g:
                got = hashlib.sha256(g.read()).hexdigest()
            if got != want:
                sys.exit(f"eval: {d}/{name} changed since it was frozen "
                         f"({got[:12]} != {want[:12]}): the blind test part must not be edited")


def scan(chatmon, rules, rows, model=None):
    """The hits of every row, in order; conversations keep their turns in order."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False,
                                     encoding="utf-8") as f:
        for i, o in enumerate(rows):
            line = {"role": o["role"], "text": o["text"]}
            if o.get("conv"):
                line["conversation"] = f"{o['_where'].split(':')[0]}/{o['conv']}"
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
        path = f.name
    try:
        p = subprocess.run([chatmon, "scan", "--rules", rules, path] +
                           (["--model", model] if model else []),
                           capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(path)
    if p.returncode != 0:
        sys.exit(f"eval: chatmon scan failed ({p.returncode}):\n{p.stderr[-3000:]}")
    out = {}
    for line in p.stdout.splitlines():
        o = json.loads(line)
        if "error" in o:
            sys.exit(f"eval: corpus line {o['line']}: {o['error']}")
        out[o["line"]] = o["hits"]
    return [out.get(i + 1, []) for i in range(len(rows))]


def ratio(a, b):
    return a / b if b else float("nan")


def pct(x):
    return "  -  " if x != x else f"{100 * x:5.1f}"


def measure(rows, hits):
    cat = collections.defaultdict(collections.Counter)
    kind = collections.defaultdict(collections.Counter)
    innocent = [i for i, o in enumerate(rows) if not o["expect"]]
    all_clean = sum(1 for i in innocent if not hits[i])
    # what each multi-turn group breaks (labelled on its completing turn only)
    group = collections.defaultdict(set)
    for o in rows:
        if o.get("conv"):
            group[o["_where"].split(":")[0], o["conv"]] |= set(o["expect"])
    block_bad = block_early = 0
    veto = collections.Counter()
    for i, o in enumerate(rows):
        want = set(o["expect"])
        fired = {h["category"] for h in hits[i]}
        blocked = {h["category"] for h in hits[i] if h.get("action") == "block"}
        vetoed = {h["category"] for h in hits[i] if h.get("vetoed")} - blocked
        veto["blocked"] += bool(blocked & want)
        veto["right"] += bool(vetoed & want) and not blocked & want
        veto["wrong"] += bool(vetoed - want) and not blocked - want
        if blocked - want:
            block_bad += 1
            # an earlier turn of a violating split group, blocked for what the
            # group breaks: the violation stopped a turn early, not an innocent
            if o.get("kind") == "split" and not blocked - want - group[
                    o["_where"].split(":")[0], o.get("conv")]:
                block_early += 1
        for c in CATEGORIES:
            if c in want:
                cat[c]["pos"] += 1
                cat[c]["tp" if c in fired else "fn"] += 1
            elif c in fired:
                cat[c]["fp"] += 1
            if not want:
                cat[c]["innocent"] += 1
                cat[c]["innocent_fp"] += c in fired
                if o.get("near") == c:
                    cat[c]["near"] += 1
                    cat[c]["near_fp"] += c in fired
        if want:
            k = o.get("kind", "?")
            kind[k]["pos"] += 1
            kind[k]["hit"] += bool(want & fired)
    return cat, kind, len(innocent), all_clean, block_bad, block_early, veto


def report(name, rows, hits, out):
    cat, kind, n_innocent, all_clean, block_bad, block_early, veto = measure(rows, hits)
    res = {"lines": len(rows), "innocent": n_innocent, "categories": {}, "kinds": {}}
    print(f"\n== {name}: {len(rows)} lines, {len(rows) - n_innocent} breaking a rule, "
          f"{n_innocent} innocent")
    print(f"{'category':<15} {'pos':>5} {'recall':>7} {'prec':>7} {'clean':>7} "
          f"{'near':>5} {'near-clean':>10}")
    ok = True
    tp = fn = fp = 0
    for c in CATEGORIES:
        k = cat[c]
        rec = ratio(k["tp"], k["tp"] + k["fn"])
        prec = ratio(k["tp"], k["tp"] + k["fp"])
        clean = 1 - ratio(k["innocent_fp"], k["innocent"])
        near = 1 - ratio(k["near_fp"], k["near"])
        tp, fn, fp = tp + k["tp"], fn + k["fn"], fp + k["fp"]
        mark = ""
        if k["pos"] and (rec < TARGET_RECALL or clean < TARGET_CLEAN):
            mark, ok = "  <", False
        print(f"{c:<15} {k['pos']:>5} {pct(rec):>7} {pct(prec):>7} {pct(clean):>7} "
              f"{k['near']:>5} {pct(near):>10}{mark}")
        res["categories"][c] = {"positives": k["pos"], "recall": rec, "precision": prec,
                                "clean": clean, "near_misses": k["near"], "near_clean": near}
    rec, prec = ratio(tp, tp + fn), ratio(tp, tp + fp)
    clean = ratio(all_clean, n_innocent)
    block = 1 - ratio(block_bad, len(rows))
    ok = ok and block >= TARGET_BLOCK
    print(f"{'overall':<15} {tp + fn:>5} {pct(rec):>7} {pct(prec):>7} {pct(clean):>7}"
          f"   (clean: innocent lines with no hit at all)")
    print(f"block-clean {pct(block)} %  ({block_bad} of {len(rows)} lines blocked "
          f"for a category they do not break; {block_early} of them an earlier turn "
          "of a split group blocked for what the group breaks)")
    print(f"blocked for what they break: {veto['blocked']} lines"
          + (f"; the model vetoed the block of {veto['right'] + veto['wrong']} more "
             f"({veto['wrong']} wrong blocks, {veto['right']} right ones: "
             "warned instead)" if veto["right"] + veto["wrong"] else ""))
    print(f"{'kind':<17} {'pos':>5} {'recall':>7}")
    for k in sorted(kind, key=lambda k: -kind[k]["pos"]):
        r = ratio(kind[k]["hit"], kind[k]["pos"])
        print(f"{k:<17} {kind[k]['pos']:>5} {pct(r):>7}")
        res["kinds"][k] = {"positives": kind[k]["pos"], "recall": r}
    res.update(recall=rec, precision=prec, clean=clean, block_clean=block,
               block_early=block_early, blocked=veto["blocked"],
               vetoed_wrong=veto["wrong"], vetoed_right=veto["right"],
               meets_targets=ok)
    out[name] = res
    return ok


def misses(rows, hits):
    for i, o in enumerate(rows):
        want = set(o["expect"])
        fired = {h["category"]: h["rule"] for h in hits[i]}
        miss = want - set(fired)
        extra = {c: r for c, r in fired.items() if c not in want}
        if miss or extra:
            tag = []
            if miss:
                tag.append("MISS " + ",".join(sorted(miss)))
            if extra:
                tag.append("FALSE " + ",".join(f"{c}({r})" for c, r in sorted(extra.items())))
            print(f"{o['_where']:<14} {o['role']:<8} {' '.join(tag):<40} {o['text']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chatmon", default=os.path.join(TOP, "build", "chatmon"))
    ap.add_argument("--rules", default=os.path.join(TOP, "conf", "rules.d"))
    ap.add_argument("--part", choices=["dev", "test", "all"], default="all")
    ap.add_argument("--model", help="also the n-gram model's second opinion (docs/rules.md)")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args()
    out, ok = {}, True
    parts = ["dev", "test"] if a.part == "all" else [a.part]
    for part in parts:
        d = os.path.join(HERE, part)
        if part == "test":
            check_frozen(d)
        rows = load_part(d)
        if part == "dev":       # the pack's own corpus is tuned on too
            rows = load_part_file(os.path.join(HERE, "messages.jsonl")) + rows
        hits = scan(a.chatmon, a.rules, rows, a.model)
        passed = report(part, rows, hits, out)
        if part == "test":
            ok = passed
        if a.verbose and part == "dev":
            print("\n-- dev misses and false alarms")
            misses(rows, hits)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    if "test" in parts:
        print(f"\ntest part: {'meets' if ok else 'does NOT meet'} the targets "
              f"(recall >= {TARGET_RECALL:.0%}, clean >= {TARGET_CLEAN:.0%} per category, "
              f"block-clean >= {TARGET_BLOCK:.1%})")
    return 0 if ok else 1


def load_part_file(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            o = json.loads(line)
            o["_where"] = f"messages.jsonl:{n}"
            o.setdefault("kind", "pack")
            rows.append(o)
    return rows


if __name__ == "__main__":
    sys.exit(main())
