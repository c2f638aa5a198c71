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
    """Peak memory of one command at two data sizes: under the limit at both, and flat.

    Flat means bounded by the pipeline, not by the data: at most :attr:`growth_per_gb` MB more
    per extra GB of data (what remains is per-object bookkeeping of about a kilobyte, and the
    noise of how full the bounded buffers happened to get).
    """

    name: str
    small: Measurement
    large: Measurement
    limit_mib: float = 250.0
    growth_per_gb: float = 10.0

    @staticmethod
    def peak(m: Measurement) -> float:
        return max(m.peak_rss_mib, m.tree_rss_mib)

    @property
    def growth(self) -> float:
        """MB of peak memory per extra GB of data."""
        extra_gb = (self.large.data_bytes - self.small.data_bytes) / 1e9
        return (self.peak(self.large) - self.peak(self.small)) / extra_gb if extra_gb else 0.0

    @property
    def verdict(self) -> str:
        if not (self.small.runs and self.large.runs):
            return "not run"
        under = max(self.peak(self.small), self.peak(self.large)) < self.limit_mib
        return "ok" if under and self.growth <= self.growth_per_gb else "MISSED"


def _mib(value: float) -> str:
    return f"{value:>7.0f} MB" if value else f"{'-':>10}"


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
            f"{_mib(m.peak_rss_mib)}{_mib(m.tree_rss_mib)[2:]}  "
            f"{(f'{ratio:.2f}' if ratio is not None else '-'):>6}  {row.target} {row.verdict}"
        )
        if base is not None:
            print(
                f"{'  vs ' + base.name:<34}{_duration(base.median_seconds):>10}"
                f"{fmt_rate(base.rate, base.unit_name):>17}{_mib(base.peak_rss_mib)}"
                f"{_mib(base.tree_rss_mib)[2:]}"
            )
        if row.note:
            print(f"    {row.note}")


def render_memory(rows: list[MemoryRow]) -> None:
    if not rows:
        return
    print()
    header = (
        f"{'peak memory':<22}{'size':>8}{'RSS':>9}{'tree':>9}   {'size':>8}{'RSS':>9}{'tree':>9}"
        f"{'growth':>13}  target"
    )
    print(header)
    print("-" * (len(header) + 30))
    for row in rows:
        s, big = row.small, row.large
        print(
            f"{row.name:<22}{_sizes(s)}   {_sizes(big)}  {row.growth:+5.1f} MB/GB  "
            f"< {row.limit_mib:.0f} MB, <= {row.growth_per_gb:.0f} MB/GB {row.verdict}"
        )


def _sizes(m: Measurement) -> str:
    return f"{m.data_bytes / 1e9:>6.2f}GB{m.peak_rss_mib:>6.0f} MB{m.tree_rss_mib:>6.0f} MB"
