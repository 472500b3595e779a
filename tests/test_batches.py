"""One definition of a change, and what each attempt put live (issue 10, item 5).

A real git history with pull requests, a rollback, a failed attempt and a bot's direct "bump
build number" commit. What each attempt put live, or tried to, is checked against git itself:
``git rev-list --first-parent ATTEMPT ^LIVE`` (LIVE: the environment's last successful
deployment before it), less the bot's commit.
"""

from __future__ import annotations

from pathlib import Path

from gitrepo import BOB, GitRepo

import deliverypulse as dp
from deliverypulse.analysis.batches import deployment_table

BOT = ("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com")


def pull_request(repo: GitRepo, number: int, day: int) -> str:
    repo.checkout(f"feature-{number}", new=True)
    repo.commit(
        f"Work on {number}",
        date=f"2024-03-{day:02d}T08:00:00+00:00",
        author=BOB,
        files={f"f{number}.txt": f"{number}\n"},
    )
    repo.checkout("main")
    return repo.merge(
        f"feature-{number}",
        f"Merge pull request #{number} from octo/feature-{number}",
        f"Feature {number}",
        date=f"2024-03-{day:02d}T12:00:00+00:00",
    )


def history(path: Path) -> tuple[GitRepo, dict[str, str]]:
    repo = GitRepo(path)
    repo.commit("Initial commit", date="2024-03-01T09:00:00+00:00", files={"a.txt": "0\n"})
    shas = {"m1": pull_request(repo, 1, 2)}
    shas["m2"] = pull_request(repo, 2, 3)
    shas["m3"] = pull_request(repo, 3, 5)
    shas["m4"] = pull_request(repo, 4, 7)
    shas["b5"] = repo.commit(
        "Bump build number", date="2024-03-08T06:00:00+00:00", author=BOT, files={"n": "5\n"}
    )
    return repo, shas


#: (id, sha, status, finished): D3 rolls back to D1's sha; F fails to put m4 live.
ATTEMPTS = [
    ("D1", "m1", "success", "2024-03-02T15:00:00Z"),
    ("D2", "m2", "success", "2024-03-03T15:00:00Z"),
    ("D3", "m1", "success", "2024-03-04T15:00:00Z"),
    ("D4", "m3", "success", "2024-03-05T15:00:00Z"),
    ("F", "m4", "failure", "2024-03-07T15:00:00Z"),
    ("D5", "b5", "success", "2024-03-08T15:00:00Z"),
]


def dataset(tmp_path: Path) -> tuple[dp.Dataset, GitRepo, dict[str, str]]:
    repo, shas = history(tmp_path / "app")
    config = tmp_path / "deliverypulse.toml"
    config.write_text(
        f'[output]\npath = "{tmp_path / "data"}"\n\n'
        f'[[sources]]\nname = "app"\ntype = "git"\npath = "{repo.path}"\n',
        encoding="utf-8",
    )
    collected = dp.collect(config)
    name = str(collected.commits["repo"].iloc[0])
    deployments = [
        {
            "repo": name,
            "deployment_id": key,
            "environment": "production",
            "sha": shas[sha],
            "created_at": finished,
            "finished_at": finished,
            "status": status,
        }
        for key, sha, status, finished in ATTEMPTS
    ]
    ds = dp.Dataset.from_frames(
        deployments=deployments,
        changes=collected.changes,
        commits=collected.commits,
        collection_start={name: "2024-03-01T12:00:00Z"},
        source="app",
    )
    return ds, repo, shas


def by_git(repo: GitRepo, attempt: str, live: str | None) -> set[str]:
    """First-parent commits ``attempt`` reaches and ``live`` does not, less bots' commits."""
    if live is None:
        return {repo.sha(attempt)}
    lines = repo.git("rev-list", "--first-parent", "--format=%H %an", attempt, f"^{live}")
    found = set()
    for line in lines.splitlines():
        if line.startswith("commit "):
            continue
        sha, author = line.split(" ", 1)
        if not author.endswith("[bot]"):
            found.add(sha)
    return found


def test_each_attempt_puts_live_what_git_says_and_bots_are_no_changes(tmp_path: Path) -> None:
    ds, repo, shas = dataset(tmp_path)
    prepared = dp.prepare(ds)
    outcomes = prepared.outcomes
    batches = prepared.batches.assign(
        deployment_id=outcomes["deployment_id"].to_numpy()[prepared.batches["outcome"]],
        sha=prepared.changes["merge_sha"].to_numpy()[prepared.batches["change"]],
    )
    got = {key: set(batches.loc[batches["deployment_id"] == key, "sha"]) for key, *_ in ATTEMPTS}
    live: str | None = None
    for key, sha, status, _ in ATTEMPTS:
        assert got[key] == (by_git(repo, shas[sha], live) if live else {shas["m1"]}), key
        if status == "success":
            live = shas[sha]
    # After the rollback D4 puts #2 live again, and ships #3 itself.
    again = batches.loc[batches["deployment_id"] == "D4"].set_index("sha")["shipped"]
    assert again.to_dict() == {shas["m2"]: False, shas["m3"]: True}
    # The failed attempt tried to put #4 live; D5 ships #4 and the bot's bump, which is no change.
    assert got["F"] == got["D5"] == {shas["m4"]}

    table = deployment_table(prepared).set_index("deployment_id")
    sizes = table["batch_changes"].astype("Float64").fillna(-1).to_dict()
    # Issue 11 item 2 (changed on purpose: F was null here): the failed attempt keeps the
    # batch it tried to put live, #4.
    assert sizes == {"D1": 1, "D2": 1, "D3": 0, "D4": 2, "F": 1, "D5": 1}

    # Lead time counts the same changes: #1..#4, never the bot's commit.
    lead = dp.lead_times(prepared)
    assert set(lead["change_id"].astype(str)) == {"1", "2", "3", "4"}
    assert int(prepared.changes["is_counted"].sum()) == len(prepared.changes) - 1

    # One option: with bots counted, the bump is a change everywhere.
    with_bots = dp.prepare(ds, exclude_bots=False)
    assert len(dp.lead_times(with_bots)) == 5
    table = deployment_table(with_bots).set_index("deployment_id")
    assert int(table.loc["D5", "batch_changes"]) == 2
