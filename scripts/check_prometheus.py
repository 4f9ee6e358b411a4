#!/usr/bin/env python3
"""Strict check of a Prometheus text exposition (format 0.0.4).

Usage: check_prometheus.py FILE   (or - for stdin)

Every non-comment line must be `name{labels} value [timestamp]` with a
valid metric name, well-formed labels and a numeric value; every family
needs its `# TYPE` line before its first sample, at most one `# TYPE` and
one `# HELP` per family, a family's samples must not be split by another
family, and no series may appear twice. Exits 1 with a line-numbered
reason on the first violations, 0 (printing a summary) otherwise.
"""

import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
NAME_RE = re.compile(NAME + r"\Z")
SAMPLE_RE = re.compile(r"(" + NAME + r")(\{[^\n]*\})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?\Z")
LABEL_PAIR_RE = re.compile(r'(' + LABEL + r')="((?:[^"\\\n]|\\["\\n])*)"')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
SPECIAL = {"+Inf", "-Inf", "NaN"}
SUFFIXES = {
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}


def parse_labels(text, where, errors):
    """Parses `{a="x",b="y"}`; returns a sorted tuple of pairs."""
    inner = text[1:-1]
    pairs = []
    pos = 0
    while pos < len(inner):
        m = LABEL_PAIR_RE.match(inner, pos)
        if not m:
            errors.append(f"{where}: malformed labels {text!r}")
            return None
        pairs.append((m.group(1), m.group(2)))
        pos = m.end()
        if pos < len(inner):
            if inner[pos] != ",":
                errors.append(f"{where}: malformed labels {text!r}")
                return None
            pos += 1
    names = [k for k, _ in pairs]
    if len(set(names)) != len(names):
        errors.append(f"{where}: duplicate label name in {text!r}")
    return tuple(sorted(pairs))


def family_of(name, types):
    """The declared family a sample name belongs to (histogram/summary
    samples carry suffixes)."""
    if name in types:
        return name
    for kind, suffixes in SUFFIXES.items():
        for suf in suffixes:
            if name.endswith(suf) and types.get(name[: -len(suf)]) == kind:
                return name[: -len(suf)]
    return None


def check(text):
    errors = []
    types = {}
    helps = set()
    seen_series = set()
    finished = set()  # families whose samples are over
    current = None
    samples = 0
    family_labels = {}  # family -> its label names (without quantile/le)
    if text and not text.endswith("\n"):
        errors.append("exposition does not end with a newline")
    for no, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
        where = f"line {no}"
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("TYPE", "HELP"):
                if len(parts) < 3 or not NAME_RE.match(parts[2]):
                    errors.append(f"{where}: bad metric name in {line!r}")
                    continue
                fam = parts[2]
                if parts[1] == "TYPE":
                    if len(parts) != 4 or parts[3] not in TYPES:
                        errors.append(f"{where}: bad TYPE line {line!r}")
                        continue
                    if fam in types:
                        errors.append(f"{where}: second TYPE for {fam}")
                    if fam in finished or fam == current:
                        errors.append(f"{where}: TYPE for {fam} after its samples")
                    types[fam] = parts[3]
                else:
                    if fam in helps:
                        errors.append(f"{where}: second HELP for {fam}")
                    helps.add(fam)
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            errors.append(f"{where}: not `name{{labels}} value`: {line!r}")
            continue
        name, labels, value = m.group(1), m.group(2), m.group(3)
        if value not in SPECIAL:
            try:
                float(value)
            except ValueError:
                errors.append(f"{where}: value {value!r} is not a number")
        if labels:
            key = parse_labels(labels, where, errors)
            if key is None:
                continue
        else:
            key = ()
        fam = family_of(name, types)
        if fam is None:
            errors.append(f"{where}: sample {name} has no # TYPE line before it")
            fam = name
        if fam != current:
            if fam in finished:
                errors.append(f"{where}: samples of {fam} are not contiguous")
            if current is not None:
                finished.add(current)
            current = fam
        kind = types.get(fam)
        names = {k for k, _ in key}
        if "quantile" in names and not (kind == "summary" and name == fam):
            errors.append(f"{where}: quantile label outside a summary's samples")
        if "le" in names and not (kind == "histogram" and name == fam + "_bucket"):
            errors.append(f"{where}: le label outside a histogram's _bucket samples")
        names = frozenset(names - {"quantile", "le"})
        if family_labels.setdefault(fam, names) != names:
            errors.append(
                f"{where}: {fam} samples with labels {sorted(names)}, "
                f"earlier ones with {sorted(family_labels[fam])}"
            )
        series = (name, key)
        if series in seen_series:
            errors.append(f"{where}: duplicate series {name}{labels or ''}")
        seen_series.add(series)
        samples += 1
    if samples == 0:
        errors.append("no samples at all")
    return errors, samples, len(types)


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path = sys.argv[1]
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    errors, samples, families = check(text)
    if errors:
        for e in errors[:20]:
            print(f"check_prometheus: {e}", file=sys.stderr)
        if len(errors) > 20:
            print(f"check_prometheus: ... and {len(errors) - 20} more", file=sys.stderr)
        return 1
    print(f"check_prometheus: ok ({samples} samples in {families} families)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
