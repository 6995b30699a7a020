"""Fails its first attempt, kills plait during its second, succeeds after that.

Each attempt saves its stdin to $REC_DIR/<task>.<attempt>.prompt. Attempt 1 prints a
distinctive line and exits 1; attempt 2 sends SIGKILL to plait (its parent), as a
crash in the middle of a retry; later attempts exit 0.
"""

import os
import signal
import sys
from pathlib import Path

task = os.environ["PLAIT_TASK_ID"]
attempt = int(os.environ["PLAIT_ATTEMPT"])
rec = Path(os.environ["REC_DIR"])
rec.mkdir(parents=True, exist_ok=True)
(rec / f"{task}.{attempt}.prompt").write_bytes(sys.stdin.buffer.read())
if attempt == 1:
    print(f"resumed-note-canary-{task}: disk on fire", flush=True)
    sys.exit(1)
if attempt == 2:
    os.kill(os.getppid(), signal.SIGKILL)
    sys.exit(0)
print(f"fine on attempt {attempt}")
