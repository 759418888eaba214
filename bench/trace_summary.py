#!/usr/bin/env python3
"""Sum a LibTorch Chrome trace (RecordProfile) by operator: self time, calls, share.

    bench/trace_summary.py trace.json [top]

Self time is an event's duration minus that of the events nested in it on the same thread, so
that aten::conv2d does not also count the mkldnn_convolution it calls.
"""
import json
import sys
from collections import defaultdict


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    with open(path) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    spans = [e for e in events if e.get("ph") == "X"]
    by_thread = defaultdict(list)
    for e in spans:
        by_thread[e.get("tid")].append(e)
    self_time = defaultdict(float)
    calls = defaultdict(int)
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # (end, name)
        for e in evs:
            start, end = e["ts"], e["ts"] + e["dur"]
            while stack and stack[-1][0] <= start:
                stack.pop()
            if stack:
                self_time[stack[-1][1]] -= e["dur"]
            self_time[e["name"]] += e["dur"]
            calls[e["name"]] += 1
            stack.append((end, e["name"]))
    total = sum(self_time.values())
    print(f"{'operator':40s} {'self ms':>10s} {'calls':>6s} {'share':>7s}")
    for name, t in sorted(self_time.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{name[:40]:40s} {t / 1000:10.1f} {calls[name]:6d} {100 * t / total:6.1f}%")
    print(f"{'total':40s} {total / 1000:10.1f}")


if __name__ == "__main__":
    main()
