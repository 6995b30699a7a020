"""Records when it ran and what it was given, in $REC_DIR/<task>.json (outside the
repository): start and end times (time.time()), its environment, its cwd. Sleeps
$SLEEP seconds between the two stamps and writes $FILE (default <task>.txt) in the
workspace."""

import json
import os
import time
from pathlib import Path

start = time.time()
time.sleep(float(os.environ.get("SLEEP", "0")))
task = os.environ["PLAIT_TASK_ID"]
target = Path(os.environ.get("FILE", f"{task}.txt"))
target.parent.mkdir(parents=True, exist_ok=True)
with open(target, "a", encoding="utf-8") as f:
    f.write(f"{task}\n")
end = time.time()
rec = Path(os.environ["REC_DIR"])
rec.mkdir(parents=True, exist_ok=True)
record = {"start": start, "end": end, "env": dict(os.environ), "cwd": os.getcwd()}
(rec / f"{task}.json").write_text(json.dumps(record))
print(f"stamped {task}")
