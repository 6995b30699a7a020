#!/bin/sh
# A cheap command agent for timing tests (a shell starts in ~1 ms, Python in ~50).
# Checks that out/<id>.txt exists for every id in $NEEDS (the tasks it depends on
# must have finished first), sleeps $SLEEP seconds, then writes out/<its id>.txt.
# The prompt arrives on stdin and is ignored: it never reaches this shell as code.
for need in $NEEDS; do
    if [ ! -f "out/$need.txt" ]; then
        echo "missing out/$need.txt" >&2
        exit 1
    fi
done
sleep "$SLEEP"
mkdir -p out
echo "$PLAIT_TASK_ID" > "out/$PLAIT_TASK_ID.txt"
echo "wrote out/$PLAIT_TASK_ID.txt"
