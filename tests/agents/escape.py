"""A fake agent that leaves processes behind: one in its own group, one escaped.

Starts `sleep 60` in the background (same process group) and a `setsid sleep 60`
(its own session: it leaves the group but keeps the environment, so the marker),
with stdout inherited so the pipe stays open, then prints "left" and exits 0.
"""

import os
import subprocess
import sys
import time

subprocess.Popen(["sleep", "60"])
escapee = subprocess.Popen(["setsid", "sleep", "60"])
# Exit only once it has really left the group: before its setsid() it would die with
# the group, and the test could not tell an escape from a group member.
deadline = time.monotonic() + 10
while os.getpgid(escapee.pid) == os.getpgrp() and time.monotonic() < deadline:
    time.sleep(0.005)
print("left", flush=True)
sys.exit(0)
