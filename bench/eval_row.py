#!/usr/bin/env python3
"""One markdown table row from an `eval` summary.json: the leading cells given, then Dice, AJI, PQ,
object F1 (precision / recall), mAP, the typed mPQ+ where the split has classes, and the seconds
between two `date +%s.%N` stamps.

    bench/eval_row.py SUMMARY_JSON START END CELL...
"""
import json
import sys

path, start, end, *cells = sys.argv[1:]
d = json.load(open(path))
b = d["binary"]
f1 = b["object_f1"]
mpq = d.get("classes", {}).get("mpq_plus")
scores = [f"{b['dice']['mean']:.3f}", f"{b['aji']['mean']:.3f}", f"{b['pq']['mean']:.3f}",
          f"{f1['f1']:.3f} ({f1['precision']:.3f} / {f1['recall']:.3f})", f"{b['map']:.3f}",
          "-" if mpq is None else f"{mpq:.3f}", f"{float(end) - float(start):.0f}"]
print("| " + " | ".join(cells + scores) + " |")
