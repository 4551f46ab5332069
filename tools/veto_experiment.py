#!/usr/bin/python3
"""How the model's veto of blocks (model_veto:, docs/rules.md "A block needs
two opinions") does on lines neither the rules nor the model were tuned on:
each of four blind files sets of the dev part is matched with the pack as it
was just before that set joined dev (a commit of this repository's history)
and scored by a model trained on the rest of dev only; every block is then
kept or vetoed at several floors.

usage: tools/veto_experiment.py [--chatmon build/chatmon]
Needs python3-sklearn and the repository's history (a full clone). Slow:
13 regressions per set.
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "corpus"))
import train_model as tm   # noqa: E402
import eval as ev          # noqa: E402

# the set, and the last commit before it joined dev (its pack never saw it)
SETS = {"D13-D14": ("ec30ca6", ["D13", "D14"]), "T4-T6": ("201d3d2", ["T4", "T5", "T6"]),
        "D15": ("a8a6b43", ["D15"]), "D16-D17": ("bd83316", ["D16", "D17"])}
FLOORS = [0.05, 0.1, 0.15, 0.2, 0.3]


def main():
    import numpy as np
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chatmon", default=os.path.join(TOP, "build", "chatmon"))
    a = ap.parse_args()
    rows, _ = tm.load_rows(os.path.join(TOP, "tests", "corpus"))
    X = tm.matrix(rows, tm.normalise(a.chatmon, [r["text"] for r in rows]))
    Y = np.array([[1 if c in r["expect"] else 0 for c in tm.CATEGORIES] for r in rows])
    blocks = []     # (set, probability of the block's category, right?)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (rev, files) in SETS.items():
            te = np.array([r["_file"] in {f"dev/{f}.jsonl" for f in files} for r in rows])
            P = np.zeros((int(te.sum()), len(tm.CATEGORIES)))
            for k in range(len(tm.CATEGORIES)):
                w, b = tm.fit(X[~te], Y[~te, k], tm.REG_C)
                P[:, k] = 1 / (1 + np.exp(-tm.margins(X[te], w, b)))
            pack = os.path.join(tmp, rev)
            os.makedirs(pack)
            subprocess.run(f"git -C {TOP} archive {rev} conf/rules.d | tar -x -C {pack}",
                           shell=True, check=True)
            sub = [dict(r, _where=r["_where"].split("/")[-1]) for r, t in zip(rows, te) if t]
            hits = ev.scan(a.chatmon, os.path.join(pack, "conf", "rules.d"), sub)
            for i, (r, h) in enumerate(zip(sub, hits)):
                for c in {x["category"] for x in h if x.get("action") == "block"}:
                    blocks.append((name, P[i, tm.CATEGORIES.index(c)], c in r["expect"]))
            print(f"{name}: {len(sub)} lines, pack of {rev}", flush=True)
    n = collections.Counter(right for _, _, right in blocks)
    print(f"blocks: {n[True]} right, {n[False]} wrong (a line blocked for a category it "
          "does not break)")
    for f in FLOORS:
        kept = collections.Counter(right for _, p, right in blocks if p >= f)
        print(f"floor {f:.2f}: wrong blocks kept {kept[False]:3d} of {n[False]}, "
              f"right blocks kept {kept[True]} of {n[True]} ({kept[True] / n[True]:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
