#!/usr/bin/env python3
"""Turns criterion's output of `cargo bench --bench peers` into the tables of
docs/benchmarks.md: the median of every benchmark and its ratio to each peer in the same
group (cancel-token / peer; lower is better for cancel-token).

Usage: python3 benches/report.py [target/criterion]
"""
import json
import os
import sys

ORDER = ["cancel-token", "tokio-util", "triggered", "stop-token", "futures-abortable", "floor"]
GROUPS = [
    "new+drop",
    "clone+drop",
    "is_triggered/untriggered",
    "is_triggered/triggered",
    "child+drop/0-siblings",
    "child+drop/10000-siblings",
    "trigger+wake/0-waiters",
    "trigger+wake/1-waiters",
    "trigger+wake/100-waiters",
    "trigger+wake/10000-waiters",
    "trigger/1000-deep-chain",
    "trigger/10000-children",
    "run/ready-future",
    "wait/first-poll-pending",
    "two-threads/clone+check+child",
]


def criterion_dir_name(name):
    # criterion replaces the path separator in a group name
    return name.replace("/", "_")


def median_ns(root, group, bench):
    for group_dir in (os.path.join(root, criterion_dir_name(group)), os.path.join(root, *group.split("/"))):
        path = os.path.join(group_dir, bench, "new", "estimates.json")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)["median"]["point_estimate"]
    return None


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.2f} ns"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
    for group in GROUPS:
        medians = {b: median_ns(root, group, b) for b in ORDER}
        medians = {b: m for b, m in medians.items() if m is not None}
        ours = medians.get("cancel-token")
        if ours is None:
            print(f"<!-- {group}: no data -->\n")
            continue
        print(f"### {group}\n")
        print("| implementation | median | cancel-token / this |")
        print("|---|---:|---:|")
        for bench, ns in medians.items():
            ratio = "—" if bench == "cancel-token" else f"{ours / ns:.2f}x"
            print(f"| {bench} | {fmt_time(ns)} | {ratio} |")
        print()


if __name__ == "__main__":
    main()
