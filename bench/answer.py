"""Per-stage latency of `ask` over SQuAD's measuring questions, each asked once with its query embedded anew:
analyse (question parse), retrieve, compose and total, p50 and p99."""

from __future__ import annotations

import argparse

from eval.benchmarks import load
from rag.config import Settings

from common import percentile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=500, help="questions of the measuring part (seeded sample)")
    args = parser.parse_args()
    assistant, items = load("squad", part="measure", limit=args.limit, settings=Settings())
    assistant.ask("warm-up question about the corpus?")
    stages: dict[str, list[float]] = {"analyse": [], "retrieve": [], "compose": [], "total": []}
    for item in items:
        answer = assistant.ask(item.question)
        for stage, values in stages.items():
            values.append(answer.timings_ms[stage])
    n = len(stages["total"])
    for stage, values in stages.items():
        print(f"{stage:>8}: p50 {percentile(values, 50):7.2f} ms   p99 {percentile(values, 99):7.2f} ms   (n={n})")
    print(f"compose p50 target <= 5 ms: {'met' if percentile(stages['compose'], 50) <= 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
