"""Side-by-side ratio benchmarks for aiopod (not run in CI): ``python -m benchmarks [NAME...] [--quick]``.

Each comparison runs A and B interleaved (A B, B A, A B, ...) for several pairs and
reports the median of the per-pair ratios A/B, so load on the machine hits both sides
alike. Whatever depends on process state (imports, heap, the loop) is measured in a
fresh subprocess (``benchmarks._worker``).

A benchmark module ``bench_NAME.py`` exposes ``NAME``, ``TITLE`` and
``run(settings: Settings) -> list[Row]`` (see ``benchmarks._harness``); ``__main__``
lists them in ``BENCHMARKS``.
"""
