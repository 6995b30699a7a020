"""Touches $STARTED (a path outside the repository) as soon as it runs, then sleeps
$SLEEP seconds and writes <task>.txt in its workspace."""

import os
import time
from pathlib import Path

Path(os.environ["STARTED"]).write_text(str(os.getpid()))
time.sleep(float(os.environ.get("SLEEP", "0")))
Path(f"{os.environ['PLAIT_TASK_ID']}.txt").write_text("slept\n")
print("awake")
