"""Does deliverypulse charge each commit to the release that first contained it? Git decides.

For each repository: collect it with the git connector (default options unless
``--deployments`` is given), link changes to deployments, and charge every commit to the
deployment its change was linked to (a commit without a change is its own change). Then ask git
itself: walking the successful production deployments in time order, ``git rev-list SHA --not
EARLIER...`` lists the commits each one shipped first. A commit is charged right when both
agree. Commits git puts in the first deployment are left out (they predate the collection), and
so are merge commits that belong to no change: a ``git pull`` merge or the forward merge of a
maintenance branch is no change by the rules (its commits are), so nothing charges it.

    python benchmarks/linking_vs_git.py ~/src/flask ~/src/httpx [--deployments 'tags:^\\d']
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import deliverypulse as dp
from deliverypulse.config import config_from_dict


def git_first_shipped(path: Path, shas: list[str]) -> dict[str, int]:
    """{commit: index of the first deployment (in ``shas`` order) whose commit contains it}."""
    first: dict[str, int] = {}
    earlier: list[str] = []
    for index, sha in enumerate(shas):
        done = subprocess.run(
            ["git", "rev-list", sha, "--not", *earlier] if earlier else ["git", "rev-list", sha],
            cwd=path,
            capture_output=True,
            text=True,
            check=True,
        )
        for commit in done.stdout.split():
            first.setdefault(commit, index)
        earlier.append(sha)
    return first


def measure(path: Path, deployments: str | None) -> dict[str, object]:
    source: dict[str, object] = {"type": "git", "path": str(path), "name": "repo"}
    if deployments:
        source["deployments"] = deployments
    with tempfile.TemporaryDirectory() as out:
        config = config_from_dict({"sources": [source]}, output=out)
        summary = dp.run_collect(config)
        if not summary.ok:
            raise SystemExit("; ".join(summary.lines()))
        ds = dp.load(out)
        links = dp.link(ds)
    deployed = ds.deployments.loc[
        ds.deployments["status"].eq("success").fillna(False)
        & ds.deployments["is_production"].fillna(True)
    ]
    deployed = deployed.assign(
        deployed_at=deployed["finished_at"].fillna(deployed["created_at"])
    ).sort_values(["deployed_at", "created_at", "deployment_id"], kind="stable")
    order = {d: i for i, d in enumerate(deployed["deployment_id"])}
    truth = git_first_shipped(path, list(deployed["sha"].astype(str)))
    commits = ds.commits[["sha", "change_id", "parents"]].copy()
    no_change = commits["change_id"].isna() & (commits["parents"].map(len) > 1)
    commits["change"] = commits["change_id"].fillna(commits["sha"])
    charged = links.drop_duplicates("change_id").set_index("change_id")["deployment_id"]
    commits["charged"] = commits["change"].map(charged).map(order)
    commits["first"] = commits["sha"].map(truth)
    after_first = commits["first"].fillna(0) >= 1
    judged = commits.loc[after_first & ~no_change]
    right = judged["charged"].eq(judged["first"]).sum()
    late = judged["charged"] > judged["first"]
    times = deployed["deployed_at"].to_numpy()
    late_days = [
        (times[int(c)] - times[int(f)]) / np.timedelta64(1, "D")
        for c, f in zip(judged.loc[late, "charged"], judged.loc[late, "first"], strict=True)
    ]
    shipped = deployed["deployment_id"].isin(set(links["deployment_id"])).sum()
    return {
        "repo": path.name,
        "deployments": len(deployed),
        "deployments shipping nothing": int(len(deployed) - shipped),
        "commits judged": len(judged),
        "merges that are no change (left out)": int((after_first & no_change).sum()),
        "charged to the first containing deployment": f"{right / max(len(judged), 1):.1%}",
        "charged later": int(late.sum()),
        "median days late": f"{float(np.median(late_days)):.0f}" if late_days else "-",
        "never charged": int(judged["charged"].isna().sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--deployments", help="the git connector's deployments option")
    args = parser.parse_args()
    rows = [measure(path.resolve(), args.deployments) for path in args.paths]
    print(pd.DataFrame(rows).set_index("repo").T.to_string())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
