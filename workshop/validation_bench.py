"""The validation section of `workshop bench`: DataPrime validation time per query.

Two figures, both measured in this process with the caches cleared before every call (the
services cache validations; a benchmark of cache hits would measure a dict lookup):

1. the conformance corpus (tests/dataprime/corpus.yaml): median and p99 time per query of
   today's validator;
2. today's validator beside the pre-issue-15 one (a frozen copy in stack/dataprime/legacy,
   kept as the baseline arm) on the same 30 questions' generated queries, interleaved round by
   round with the order alternating, so machine noise hits both arms alike.

`python -m workshop.validation_bench` prints the figures without the rest of the benchmark.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from stack.common.stats import percentile
from stack.dataprime import generate
from stack.dataprime import parser as new_parser
from stack.dataprime import validator as new_validator
from stack.dataprime.legacy import generator as old_generator
from stack.dataprime.legacy import parser as old_parser
from stack.dataprime.legacy import validator as old_validator

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "dataprime" / "corpus.yaml"
QUESTIONS = ROOT / "scenarios" / "questions.txt"
QUESTION_COUNT = 30


def _uncached(validator: Any, parser: Any) -> Callable[[str], bool]:
    def run(query: str) -> bool:
        validator._validate_cached.cache_clear()
        parser._parse_cached.cache_clear()
        return validator.validate(query).valid

    return run


NEW = _uncached(new_validator, new_parser)
OLD = _uncached(old_validator, old_parser)


def _time_us(fn: Callable[[str], bool], query: str) -> float:
    # This thread's CPU time: other processes on a shared machine do not inflate it the way
    # they inflate wall time, and validation does no I/O to wait for.
    t0 = time.thread_time_ns()
    fn(query)
    return (time.thread_time_ns() - t0) / 1000


def _summary(per_query: list[float]) -> dict[str, float]:
    return {
        "median_us": round(statistics.median(per_query), 1),
        "p99_us": round(percentile(per_query, 0.99) or 0.0, 1),
        "mean_us": round(statistics.fmean(per_query), 1),
    }


def _side_by_side(queries: list[str], rounds: int) -> dict[str, Any]:
    """Both validators on the same strings, interleaved, the order alternating each round."""
    new_runs: list[list[float]] = [[] for _ in queries]
    old_runs: list[list[float]] = [[] for _ in queries]
    for rnd in range(rounds):
        for i, q in enumerate(queries):
            arms = [(NEW, new_runs), (OLD, old_runs)]
            for fn, sink in arms if rnd % 2 == 0 else reversed(arms):
                sink[i].append(_time_us(fn, q))
    new_s = _summary([statistics.median(v) for v in new_runs])
    old_s = _summary([statistics.median(v) for v in old_runs])
    return {
        "queries": len(queries),
        "new": {**new_s, "accepted": sum(NEW(q) for q in queries)},
        "old": {**old_s, "accepted": sum(OLD(q) for q in queries)},
        "median_ratio_new_vs_old": round(new_s["median_us"] / old_s["median_us"], 3),
        "p99_ratio_new_vs_old": round(new_s["p99_us"] / old_s["p99_us"], 3),
    }


def measure(rounds: int = 15) -> dict[str, Any]:
    corpus = [e["query"] for e in yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["queries"]]
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    questions = [q.strip() for q in lines if q.strip() and not q.startswith("#")]
    questions = questions[:QUESTION_COUNT]
    generated = [generate(q).query for q in questions]
    generated_before = [old_generator.generate(q).query for q in questions]
    for q in corpus + generated + generated_before:  # warm imports and regex caches once
        NEW(q)
        OLD(q)
    # 1. the corpus, today's validator: per query, the median of `rounds` runs
    corpus_times = [statistics.median(_time_us(NEW, q) for _ in range(rounds)) for q in corpus]
    return {
        "rounds": rounds,
        "corpus": {"queries": len(corpus), **_summary(corpus_times)},
        # 2. the 30 questions' queries as today's generator writes them ...
        "generated": _side_by_side(generated, rounds),
        # ... and as the pre-issue generator wrote them (the old validator accepts all of
        # these, so neither arm exits early)
        "generated_before": _side_by_side(generated_before, rounds),
    }


def targets(v: dict[str, Any] | None, target: Callable[..., dict[str, Any]]) -> list[Any]:
    """The issue's goal: no slower per query than before, on the same queries, same run."""
    if not v:
        return []
    g = v["generated_before"]
    return [
        target(
            "validation_vs_before",
            f"DataPrime validation, today's ÷ before issue 15 ({g['queries']} generated queries)",
            "median ≤ 1.0",
            g["median_ratio_new_vs_old"],
            g["median_ratio_new_vs_old"] <= 1.0,
        )
    ]


def _rows(g: dict[str, Any]) -> list[str]:
    return [
        "| validator | median (µs) | p99 (µs) | accepted |",
        "|---|---|---|---|",
        f"| today's | {g['new']['median_us']:.0f} | {g['new']['p99_us']:.0f} "
        f"| {g['new']['accepted']}/{g['queries']} |",
        f"| before issue 15 | {g['old']['median_us']:.0f} | {g['old']['p99_us']:.0f} "
        f"| {g['old']['accepted']}/{g['queries']} |",
        "",
        f"Today ÷ before: median {g['median_ratio_new_vs_old']}, p99 "
        f"{g['p99_ratio_new_vs_old']} (below 1: today's is faster).",
        "",
    ]


def markdown(v: dict[str, Any]) -> list[str]:
    return [
        "## DataPrime validation (in-process, caches cleared before each call)",
        "",
        f"Conformance corpus: {v['corpus']['queries']} public queries, median "
        f"{v['corpus']['median_us']:.0f} µs, p99 {v['corpus']['p99_us']:.0f} µs per query "
        f"(per query: the median of {v['rounds']} runs, this thread's CPU time).",
        "",
        f"The first {v['generated']['queries']} questions of scenarios/questions.txt, side by "
        "side in one run, as the pre-issue generator wrote them (both validators accept them):",
        "",
        *_rows(v["generated_before"]),
        "The same questions as today's generator writes them (the old validator refuses most "
        "at their first bracket keypath, so its figures include early exits):",
        "",
        *_rows(v["generated"]),
    ]


if __name__ == "__main__":
    import json

    result = measure()
    print(json.dumps(result, indent=2))
    print("\n".join(markdown(result)))
