"""A fake agent that records what it was given, in its working directory.

stdin.bin: its standard input, byte for byte; promptfile.bin: the file named by
PLAIT_PROMPT_FILE; argv.json: its arguments; env.json: its environment.
Prints "recorded" and exits 0.
"""

import json
import os
import sys

data = sys.stdin.buffer.read()
with open("stdin.bin", "wb") as f:
    f.write(data)
prompt_file = os.environ.get("PLAIT_PROMPT_FILE")
if prompt_file:
    with open(prompt_file, "rb") as src, open("promptfile.bin", "wb") as dst:
        dst.write(src.read())
with open("argv.json", "w") as f:
    json.dump(sys.argv[1:], f)
with open("env.json", "w") as f:
    json.dump(dict(os.environ), f)
print("recorded")
