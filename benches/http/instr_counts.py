"""Executions per instruction from a callgrind profile taken with
--dump-instr=yes (benches/http/callgrind.sh with DUMP_INSTR=1): the
parser footprint.py and atomics.sh share. Standard library only."""

import re

NAME = re.compile(r"c?fn=\((\d+)\)(?: (.*))?")


def parse(path):
    """(instruction address -> (executions, function id), function id ->
    name). Costs of calls made from an instruction are not counted: only
    what the instruction itself ran."""
    names, counts = {}, {}
    positions, addr, fn, after_call = 1, 0, None, False
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.startswith("positions:"):
                positions = len(line.split()) - 1
                continue
            if line.startswith(("fn=", "cfn=")):
                m = NAME.match(line)
                if m and m.group(2):
                    names[m.group(1)] = m.group(2)
                if line.startswith("fn="):
                    fn = m.group(1) if m else line[3:]
                    after_call = False
                continue
            if line.startswith("calls="):
                after_call = True  # the next cost line is the call's, not fn's own
                continue
            if not line or not (line[0].isdigit() or line[0] in "+-*"):
                continue
            fields = line.split()
            a = fields[0]
            if a.startswith("0x"):
                addr = int(a, 16)
            elif a[0] in "+-":
                step = int(a[1:], 16) if a[1:].startswith("0x") else int(a[1:])
                addr += step if a[0] == "+" else -step
            elif a != "*":
                addr = int(a)
            if after_call:
                after_call = False
                continue
            ran = int(fields[positions]) if len(fields) > positions else 0
            prev = counts.get(addr, (0, fn))[0]
            counts[addr] = (prev + ran, fn)
    return counts, names
