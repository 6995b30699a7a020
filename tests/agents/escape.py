"""A fake agent that leaves processes behind: one in its own group, one escaped.

Starts `sleep 60` in the background (same process group) and a `setsid sleep 60`
(its own session: it leaves the group but keeps the environment, so the marker),
with stdout inherited so the pipe stays open, then prints "left" and exits 0.
"""

import subprocess
import sys

subprocess.Popen(["sleep", "60"])
subprocess.Popen(["setsid", "sleep", "60"])
print("left", flush=True)
sys.exit(0)
