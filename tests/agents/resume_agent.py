"""A fake agent for the kill-and-resume tests: records every execution in a ledger.

Usage: resume_agent.py LEDGER MODE SLEEP_S. The task and attempt come from plait's
variables (PLAIT_TASK_ID, PLAIT_ATTEMPT). It first appends
"<task> <attempt> <pid> <ppid>" to LEDGER (a file outside the repository; one
O_APPEND write, so lines from parallel agents never interleave), sleeps, then
writes ``out/<task>.txt`` in its workspace: the task id and the prompt it was given
(which holds other tasks' outputs), and prints "output of <task>" (its output).
MODE: ``ok`` exits 0; ``fail`` exits 1 (after writing); ``flaky`` fails on attempt
1 and succeeds on later ones.
The parent pid tells which plait process (a run or a resume) started it.
"""

import os
import sys
import time
from pathlib import Path

ledger, mode, sleep_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
task = os.environ["PLAIT_TASK_ID"]
attempt = int(os.environ["PLAIT_ATTEMPT"])
line = f"{task} {attempt} {os.getpid()} {os.getppid()}\n".encode()
fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
try:
    os.write(fd, line)
    os.fsync(fd)
finally:
    os.close(fd)
prompt = sys.stdin.read()
time.sleep(sleep_s)
out = Path("out")
out.mkdir(exist_ok=True)
# The prompt holds the outputs of the tasks it names ({{ tasks.x.output }}); a flaky
# task's retry prompt also holds plait's note about the failure, so it is left out.
body = f"{task}\n" if mode == "flaky" else f"{task}\n{prompt}"
(out / f"{task}.txt").write_text(body, encoding="utf-8")
if mode == "fail" or (mode == "flaky" and attempt == 1):
    print(f"{task}: failing on purpose (attempt {attempt})")
    sys.exit(1)
print(f"output of {task}")
