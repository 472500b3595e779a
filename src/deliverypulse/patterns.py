"""Default patterns every connector and metric shares, so a hotfix or a bot means one thing.

Each is a documented option where it is used (``hotfix`` and ``bots`` on every source,
``bot_pattern`` in the metrics); these are only the defaults.
"""

#: A hotfix: matched on titles, branch names and labels.
HOTFIX_PATTERN = r"(?i)\bhot[-_ ]?fix"

#: A bot author: matched on logins, usernames, names and emails. GitHub apps end in ``[bot]``;
#: GitLab project and group access tokens act as ``project_N_bot`` / ``group_N_bot``.
BOT_PATTERN = (
    r"(?i)(?:\[bot\]$|^dependabot|^renovate|^github-actions|^snyk-bot"
    r"|^project_\d+_bot|^group_\d+_bot|-bot$)"
)
