"""The HTML report: one self-contained page with the headline DORA metrics, their trends, the
lead-time breakdown, batch size and approval gates against failure, a table per repo, the
verdict and the definitions used.

Everything is inline (CSS, charts as SVG, no JavaScript, system fonts), so the file opens
offline, from an e-mail attachment or a shared drive, and prints. matplotlib and the analysis
load only when a report is made, so ``import deliverypulse`` stays quick.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from deliverypulse.dataset import Dataset
from deliverypulse.dora import SIGNALS
from deliverypulse.dora.clusters import check_benchmarks
from deliverypulse.dora.failure import check_signals
from deliverypulse.dora.periods import check_period, check_tz

if TYPE_CHECKING:
    from deliverypulse.analysis import Analysis


def report(
    ds: Dataset,
    path: str | Path,
    *,
    period: str = "month",
    title: str | None = None,
    tz: str = "UTC",
    analysis: Analysis | None = None,
    benchmarks: str = "2023",
    failure_signals: Iterable[str] = SIGNALS,
    revert_window: str | pd.Timedelta = "7D",
    environments: Any = None,
    since: Any = None,
    exclude_bots: bool = True,
    trunk: bool = True,
) -> Path:
    """Write the HTML report of ``ds`` to ``path`` and return the path.

    ``period`` (``week`` or ``month``) and ``tz`` set the trend periods; the metric options
    (``benchmarks``, ``failure_signals``, ``revert_window``, ``environments``, ``since``,
    ``exclude_bots``, ``trunk``) mean what they mean in :func:`deliverypulse.dora.metrics`
    and are written into the page's definitions. ``analysis``: a result of
    :func:`deliverypulse.analyze` to show instead of running it with these options.
    """
    from deliverypulse.reporting.content import Options
    from deliverypulse.reporting.page import build_page, render

    options = Options(
        period=check_period(period),
        tz=check_tz(tz),
        benchmarks=check_benchmarks(benchmarks),
        failure_signals=check_signals(failure_signals),
        revert_window=str(revert_window),
        environments=environments,
        since=since,
        exclude_bots=exclude_bots,
        trunk=trunk,
    )
    html = render(build_page(ds, options, title=title, analysis=analysis))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(html, encoding="utf-8")
    temporary.replace(target)
    return target


__all__ = ["report"]
