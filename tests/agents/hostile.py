"""A misbehaving agent; argv[1] says how.

exit N        print a line and exit with code N
signal        kill itself with SIGSEGV
hang          start a child `sleep` and a `setsid sleep` grandchild, then sleep forever
ignore-term   ignore SIGTERM (and start a child that ignores it too), then sleep forever
flood MB      write MB mebibytes to stdout, then exit 0
nothing       exit 0 without touching anything

Every process it starts keeps plait's environment, so the task's PLAIT_MARKER.
"""

import os
import signal
import subprocess
import sys
import time

mode = sys.argv[1]
if mode == "exit":
    print(f"giving up with {sys.argv[2]}", flush=True)
    sys.exit(int(sys.argv[2]))
elif mode == "signal":
    print("about to crash", flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)
elif mode == "hang":
    subprocess.Popen(["sleep", "300"])
    subprocess.Popen(["setsid", "sleep", "300"], stdout=subprocess.DEVNULL)
    print("hanging", flush=True)
    while True:
        time.sleep(1)
elif mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # SIG_IGN is inherited across exec: this child ignores SIGTERM too.
    subprocess.Popen(["sleep", "300"])
    print("ignoring SIGTERM", flush=True)
    while True:
        time.sleep(1)
elif mode == "flood":
    chunk = b"x" * 1023 + b"\n"
    out = sys.stdout.buffer
    for _ in range(int(sys.argv[2]) * 1024):
        out.write(chunk)
    out.flush()
elif mode == "nothing":
    pass
else:
    sys.exit(f"unknown mode {mode}")
