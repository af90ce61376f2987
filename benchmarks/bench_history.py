"""Row 17: a pod that starts a bean per job stays bounded (issue 14).

1 million short beans (``context.pod.add_bean(job(i))``, a tenth of them failing) added
100 per loop turn: RSS at the end against RSS after the first 10k (goal <= 1.2x), and
the add -> finish cost per bean against ``create_task`` plus a done callback (goal <= 1.5x).
"""

from __future__ import annotations

from ._harness import Comparison, Row, Settings, side_by_side, worker

BEANS = 1_000_000
PER_TURN = 100
ROUNDS = 3
RSS_RUNS = 2
RSS_GOAL = 1.2
COST_GOAL = 1.5


def run(settings: Settings) -> list[Row]:
    cases = {"pod": ("churn", "pod", BEANS, PER_TURN), "tasks": ("churn", "tasks", BEANS, PER_TURN)}
    rounds = settings.pairs(ROUNDS)
    cpu = side_by_side(cases, rounds, key="per_bean_us", timeout=900)
    cost = Comparison(cpu["pod"], cpu["tasks"])
    rows = [
        cost.row(
            17,
            "1M short beans added 100 per loop turn, add -> finish CPU per bean vs create_task + done callback",
            COST_GOAL,
            ("pod", "tasks"),
            lambda us: f"{us:.1f} us",
        )
    ]
    runs = [worker("churn", "pod", BEANS, PER_TURN, timeout=900) for _ in range(settings.runs(RSS_RUNS))]
    growth = [run["rss_end_kib"] / run["rss_10k_kib"] for run in runs]
    worst = max(growth)
    detail = "; ".join(f"{r['rss_10k_kib'] / 1024:.1f} -> {r['rss_end_kib'] / 1024:.1f} MiB" for r in runs)
    rows.append(
        Row(17, "same, RSS after 1M beans vs after the first 10k (history 1000)", f"{worst:.2f}x",
            f"<= {RSS_GOAL:g}x", worst <= RSS_GOAL, f"runs: {detail}")
    )  # fmt: skip
    return rows
