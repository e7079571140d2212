"""Issue 12: a started process keeps its start-up objects out of the garbage collector's
walks, so an oldest-generation collection under load walks what the work made, not the
~430 000 objects of the imports (a 250 ms stop of the event loop each time before)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What `python -m bot run` and `python -m bot worker` have imported when they freeze.
PROBE = """
import gc
import bot.process.lifecycle, bot.process.workers
from bot.process.heap import freeze_start_up_heap
frozen = freeze_start_up_heap()
print(frozen, len(gc.get_objects(generation=2)))
"""


def test_the_start_up_heap_is_frozen_out_of_collections():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                          text=True, timeout=120,
                          env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": ""})
    assert done.returncode == 0, done.stderr
    frozen, still_walked = map(int, done.stdout.split())
    assert frozen > 100_000  # the imports: litellm, SQLAlchemy, Bolt, ...
    assert still_walked < frozen / 100
