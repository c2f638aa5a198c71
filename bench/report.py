"""The table `make bench` prints: one row per measurement, its baseline, ratio and verdict."""

from __future__ import annotations

from dataclasses import dataclass

from bench.harness import Measurement, fmt_rate


@dataclass
class Row:
    """A measurement with its baseline (same run, same files) and its target.

    A target is a minimum ratio to the baseline's rate, a minimum absolute rate, or a maximum
    median time (search); the verdict is computed from whichever is set.
    """

    measurement: Measurement
    baseline: Measurement | None = None
    target: str = ""
    minimum_ratio: float | None = None
    minimum_rate: float | None = None
    maximum_seconds: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline.rate:
            return None
        return self.measurement.rate / self.baseline.rate

    @property
    def verdict(self) -> str:
        m, ratio = self.measurement, self.ratio
        if not m.runs:
            return "not run"
        checks = []
        if self.minimum_ratio is not None and ratio is not None:
            checks.append(ratio >= self.minimum_ratio)
        if self.minimum_rate is not None:
            checks.append(m.rate >= self.minimum_rate)
        if self.maximum_seconds is not None:
            checks.append(m.median_seconds < self.maximum_seconds)
        if not checks:
            return ""
        return "ok" if all(checks) else "MISSED"


@dataclass
class MemoryRow:
    """Peak memory of one command at two data sizes (must stay flat and under the limit)."""

    name: str
    small: Measurement
    large: Measurement
    limit_mib: float = 250.0
    growth_allowance: float = 1.15  # at most 15 % more at the larger size (noise, page tables)

    @property
    def verdict(self) -> str:
        if not (self.small.runs and self.large.runs):
            return "not run"
        peak_small = max(self.small.peak_rss_mib, self.small.tree_rss_mib)
        peak_large = max(self.large.peak_rss_mib, self.large.tree_rss_mib)
        flat = peak_large <= peak_small * self.growth_allowance
        return "ok" if peak_large < self.limit_mib and flat else "MISSED"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def render(rows: list[Row]) -> None:
    header = (
        f"{'measurement':<34}{'median':>10}{'rate':>17}{'peak RSS':>10}{'tree':>8}  "
        f"{'ratio':>6}  target"
    )
    print(header)
    print("-" * (len(header) + 24))
    for row in rows:
        m, base, ratio = row.measurement, row.baseline, row.ratio
        print(
            f"{m.name:<34}{_duration(m.median_seconds):>10}{fmt_rate(m.rate, m.unit_name):>17}"
            f"{m.peak_rss_mib:>7.0f} MB{m.tree_rss_mib:>5.0f} MB  "
            f"{(f'{ratio:.2f}' if ratio is not None else '-'):>6}  {row.target} {row.verdict}"
        )
        if base is not None:
            print(
                f"{'  vs ' + base.name:<34}{_duration(base.median_seconds):>10}"
                f"{fmt_rate(base.rate, base.unit_name):>17}{base.peak_rss_mib:>7.0f} MB"
                f"{base.tree_rss_mib:>5.0f} MB"
            )
        if row.note:
            print(f"    {row.note}")


def render_memory(rows: list[MemoryRow]) -> None:
    if not rows:
        return
    print()
    header = (
        f"{'peak memory':<22}{'size':>8}{'RSS':>9}{'tree':>9}   {'size':>8}{'RSS':>9}{'tree':>9}"
        "  target"
    )
    print(header)
    print("-" * (len(header) + 30))
    for row in rows:
        s, big = row.small, row.large
        print(
            f"{row.name:<22}{_sizes(s)}   {_sizes(big)}  < {row.limit_mib:.0f} MB, flat "
            f"{row.verdict}"
        )


def _sizes(m: Measurement) -> str:
    return f"{m.data_bytes / 1e9:>6.2f}GB{m.peak_rss_mib:>6.0f} MB{m.tree_rss_mib:>6.0f} MB"
