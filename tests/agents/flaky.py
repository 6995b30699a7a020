"""Fails its first attempt, succeeds on the next.

Each attempt saves its stdin to $REC_DIR/<task>.<attempt>.prompt. Attempt 1 prints
a distinctive line ("flaky-failure-<task>: disk on fire") and exits 1; later attempts
write <task>.txt in the workspace and exit 0. With KILL_PLAIT_AT=<n>, attempt n
instead kills plait (its parent) with SIGKILL, as a crash in the middle of a retry.
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
    print(f"flaky-failure-{task}: disk on fire", flush=True)
    sys.exit(1)
if str(attempt) == os.environ.get("KILL_PLAIT_AT"):
    os.kill(os.getppid(), signal.SIGKILL)
    sys.exit(0)
Path(f"{task}.txt").write_text(f"attempt {attempt}\n")
print(f"fixed on attempt {attempt}")
