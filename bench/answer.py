"""Per-stage latency of `ask` over the eval questions: retrieve, compose and total, p50 and p99."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag.assistant import Assistant
from rag.config import Settings
from rag.types import Turn

from common import ROOT, percentile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", type=Path, default=ROOT / "eval" / "seed.jsonl")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the set (the first warms the model and stores)")
    args = parser.parse_args()
    items = [json.loads(line) for line in args.set.read_text().splitlines() if line.strip()]
    assistant = Assistant.open(Settings())
    stages: dict[str, list[float]] = {"retrieve": [], "compose": [], "total": []}
    for round_ in range(args.rounds):
        assistant.embedder.clear_query_cache()  # every round embeds its queries anew
        for item in items:
            history = [Turn("user", q) for q in item.get("history", [])]
            answer = assistant.ask(item["question"], history=history)
            if round_:
                for stage, values in stages.items():
                    values.append(answer.timings_ms[stage])
    n = len(stages["total"])
    for stage, values in stages.items():
        print(f"{stage:>8}: p50 {percentile(values, 50):7.2f} ms   p99 {percentile(values, 99):7.2f} ms   (n={n})")
    print(f"compose p50 target <= 5 ms: {'met' if percentile(stages['compose'], 50) <= 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
