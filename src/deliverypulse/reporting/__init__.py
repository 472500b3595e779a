"""The HTML report: one self-contained page with the headline DORA metrics, their trends, the
lead-time breakdown, batch size and approval gates against failure, a table per repo, the
verdict and the definitions used.

Everything is inline (CSS, charts as SVG, no JavaScript, system fonts), so the file opens
offline, from an e-mail attachment or a shared drive, and prints. matplotlib and the analysis
load only when a report is made, so ``import deliverypulse`` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Unpack

import pandas as pd

from deliverypulse.dataset import Dataset
from deliverypulse.dora.options import MetricOptions, OptionKeywords
from deliverypulse.dora.periods import check_period
from deliverypulse.dora.prepared import Prepared, resolve
from deliverypulse.linking import Links

if TYPE_CHECKING:
    from deliverypulse.analysis import Analysis


def report(
    data: Dataset | Prepared,
    path: str | Path,
    *,
    period: str = "month",
    title: str | None = None,
    tz: str | None = None,
    analysis: Analysis | None = None,
    options: MetricOptions | None = None,
    links: pd.DataFrame | Links | None = None,
    show_names: bool = False,
    **keywords: Unpack[OptionKeywords],
) -> Path:
    """Write the HTML report of ``data`` to ``path`` and return the path.

    ``period`` (``week`` or ``month``) and ``tz`` set the trend periods. ``data`` is a Dataset
    or what :func:`deliverypulse.prepare` made of one; ``options``, ``links`` and keywords
    (``failure_signals``, ``since``, ``bot_pattern``...) mean what they mean in
    :func:`deliverypulse.metrics` and are written into the page's definitions. ``analysis``: a
    result of :func:`deliverypulse.analyze` to show instead of running it on the same value.

    People are not the unit: authors, approvers, reviewers and creators appear as stable
    pseudonyms (``person-`` and 8 hex digits, keyed by ``DELIVERYPULSE_PSEUDONYM_KEY`` or the
    dataset's own key) unless ``show_names=True``, for a team's own retrospective.
    """
    from deliverypulse.reporting.content import Options
    from deliverypulse.reporting.page import build_page, render

    chosen = check_period(period)
    given = {**keywords, "tz": tz} if tz is not None else dict(keywords)
    prepared = resolve(data, options, links, given)
    page_options = Options(period=chosen, metrics=prepared.options)
    html = render(
        build_page(prepared, page_options, title=title, analysis=analysis, show_names=show_names)
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(html, encoding="utf-8")
    temporary.replace(target)
    return target


__all__ = ["report"]
