"""Per-kind recall/precision of the curation filters on a labelled development set; one JSON line per filter.

Usage: python benchmarks/filter_devset_eval.py [--set /tmp/filter-devset] [--filters blur text face]
                                               [--set-option filters.blur.threshold=0.6 ...] [--dump scores.csv]

e.g. both face detectors: ``--filters face`` and ``--filters face --set-option face.detector=hog``.

The set comes from benchmarks/build_filter_devset.py: ``labels.csv`` with ``file``, ``kind`` and a
0/1 column per filter (``blurry`` for blur, ``has_text`` for text, ``has_face`` for face). Each image is scored with the
same ``Scorer`` that ``gantl data build`` runs, with only the named filters enabled; the line per
filter gives recall and precision over all labelled images and, per kind, how many were rejected,
so a regression on one kind (icons called blurry) is visible even when the totals look fine:
``kind(+)`` counts are that kind's recall, ``kind(-)`` counts its false alarms. ``--dump`` writes
every image's scores so thresholds can be re-decided without scoring again.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from gantl.config import apply_overrides, to_dict
from gantl.data.filters import PIXEL_FILTERS, FiltersConfig, Scorer, thresholds

LABEL = {"blur": "blurry", "text": "has_text", "face": "has_face"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", dest="root", default="/tmp/filter-devset")
    ap.add_argument("--filters", nargs="+", default=["blur"], choices=sorted(LABEL))
    ap.add_argument("--set-option", action="append", default=[], help="e.g. filters.blur.threshold=0.5")
    ap.add_argument("--dump", default=None, help="CSV of file, kind, labels and each filter's score")
    args = ap.parse_args()
    root = Path(args.root)
    with (root / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    cfg = FiltersConfig()
    for name in PIXEL_FILTERS:
        getattr(cfg, name).enabled = name in args.filters
    if args.set_option:
        cfg = apply_overrides(cfg, [o.removeprefix("filters.") for o in args.set_option])
    scorer = Scorer(cfg, 256)
    ths = thresholds(cfg)
    t0 = time.process_time()
    scores = [scorer.score_bytes((root / r["file"]).read_bytes()) for r in rows]
    cpu_ms = 1000 * (time.process_time() - t0) / max(1, len(rows))
    if args.dump:
        with Path(args.dump).open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["file", "kind", *(LABEL[n] for n in args.filters), *args.filters])
            for r, sc in zip(rows, scores, strict=True):
                w.writerow([r["file"], r["kind"], *(r.get(LABEL[n], "") for n in args.filters),
                            *(sc.get(n, "") for n in args.filters)])
    for name in args.filters:
        col = LABEL[name]
        lab = [r for r in rows if r.get(col, "") in ("0", "1")]
        flagged = {r["file"] for r, s in zip(rows, scores, strict=True) if ths[name].fails(s.get(name))}
        tp = sum(r[col] == "1" and r["file"] in flagged for r in lab)
        pos = sum(r[col] == "1" for r in lab)
        fp = sum(r[col] == "0" and r["file"] in flagged for r in lab)
        kinds: dict[str, list[int]] = {}
        for r in lab:
            k = kinds.setdefault(f"{r['kind']}({'+' if r[col] == '1' else '-'})", [0, 0])
            k[0] += r["file"] in flagged
            k[1] += 1
        print(json.dumps({"filter": name, "settings": to_dict(getattr(cfg, name)), "images": len(lab),
                          "recall": round(tp / pos, 3) if pos else None,
                          "precision": round(tp / (tp + fp), 3) if tp + fp else None,
                          "false_alarms": fp, "rejected_per_kind": {k: f"{a}/{b}" for k, (a, b) in kinds.items()},
                          "cpu_ms_per_img_all_filters": round(cpu_ms, 1)}))


if __name__ == "__main__":
    main()
