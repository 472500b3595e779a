"""The command line's allocator setting: freed arrays are reused, not faulted in again."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, resource, sys
import numpy as np
from deliverypulse.memory import reuse_freed_memory
applied = reuse_freed_memory() if sys.argv[1] == "on" else None
def faults(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
size = 50_000_000  # 400 MB of float64, far above glibc's mmap threshold
before = faults(); a = np.ones(size); del a; first = faults() - before
before = faults(); b = np.ones(size); del b; second = faults() - before
print(json.dumps({"applied": applied, "first": first, "second": second}))
"""


def probe(mode: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    result: dict[str, int] = json.loads(done.stdout)
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_arrays_are_reused_once_the_setting_is_on() -> None:
    off, on = probe("off"), probe("on")
    assert on["applied"] is True
    # Default glibc: a second 400 MB array is mapped afresh and faults in every page again.
    assert off["second"] > 0.5 * off["first"]
    # With the setting: the freed heap is reused, almost no page is faulted in twice.
    assert on["second"] < 0.1 * on["first"]


def test_the_installed_program_is_the_one_that_turns_it_on() -> None:
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="deliverypulse")
    assert script.value == "deliverypulse.cli:run"
