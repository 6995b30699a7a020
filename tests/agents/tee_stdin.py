"""Writes its standard input, byte for byte, to $DEST (a path outside the repository),
then prints $SAY (if set) on stdout and, if $OUTPUT is set, writes it to
PLAIT_OUTPUT_FILE (which then wins over stdout as the task's output)."""

import os
import sys

data = sys.stdin.buffer.read()
with open(os.environ["DEST"], "wb") as f:
    f.write(data)
if "OUTPUT" in os.environ:
    with open(os.environ["PLAIT_OUTPUT_FILE"], "w", encoding="utf-8") as f:
        f.write(os.environ["OUTPUT"])
print(os.environ.get("SAY", "teed"))
