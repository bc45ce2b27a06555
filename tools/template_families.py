"""Writes template.yaml's per-family lines from its one family list (the `Fn::ForEach::Families` loop's).

Every loop writes the list out (`sam package` rewrites a loop's CodeUri to S3 only when its collection
is literal, aws-sam-cli #9117); this tool keeps them equal to the first. Where a list must name every
family (EVENT_FAMILIES, the ingest's queue variables, the dashboard), the lines naming the first
family are the pattern, written again for every other family.

    python -m tools.template_families          # rewrite template.yaml (make template)
    python -m tools.template_families --check  # exit 1 if it is not current (make test runs it)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from devtools.sam_template import FAMILIES_LOOP, TEMPLATE_PATH, parse_template

#: A loop's key line, its loop variable, and its collection: `    - [Quote, Order, Workflow]`.
_LOOP = re.compile(r"^(\s*Fn::ForEach::\w+:\n\s*- \w+\n\s*- )\[[^\]\n]*\]$", re.MULTILINE)


def families_of(text: str) -> list[str]:
    """The families as the template spells them (`Quote`), from the `Fn::ForEach::Families` loop."""
    collection = parse_template(text)["Resources"][FAMILIES_LOOP][1]
    if not isinstance(collection, list):
        raise ValueError(f"{FAMILIES_LOOP} must iterate a literal list (sam package needs it)")
    families = [str(family) for family in collection]
    twice = sorted({family for family in families if families.count(family) > 1})
    if twice:
        raise ValueError(f"{FAMILIES_LOOP} lists {', '.join(twice)} more than once")
    return families


#: The functions' EVENT_FAMILIES variable (Globals), from which the library reads the families.
_VARIABLE = re.compile(r"^(\s*EVENT_FAMILIES: )[\w,]*", re.MULTILINE)


def _loops(text: str, families: list[str]) -> str:
    """Every loop's collection, and the functions' EVENT_FAMILIES, written as the family list."""
    text = _VARIABLE.sub(lambda match: match.group(1) + ",".join(families), text)
    return _LOOP.sub(lambda match: f"{match.group(1)}[{', '.join(families)}]", text)


def _mention(family: str) -> re.Pattern[str]:
    """`QuoteEventsQueue`, `${QuoteConsumerFunction}`, `QUEUE_URL_Quote`: the family as a name's part,
    not a word of prose (`Quote events`), and never `quote` alone."""
    return re.compile(rf"(?<![A-Za-z]){family}(?=[A-Z_:.}}\"]|$)")


def _named(line: str, families: list[str]) -> list[str]:
    return [family for family in families if _mention(family).search(line)]


def _for(family: str, first: str, line: str) -> str:
    line = _mention(first).sub(family, line)
    return re.sub(rf"(?<![A-Za-z]){first.lower()}(?![a-z])", family.lower(), line)


def render(text: str, families: list[str] | None = None) -> str:
    """`text` with every run of per-family lines rewritten for `families` (default: the template's)."""
    families = families or families_of(text)
    first = families[0]
    lines = _loops(text, families).split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        # A run: consecutive lines that each name exactly one family, the first family among them.
        j = i
        while j < len(lines) and len(_named(lines[j], families + _others(lines[j], families))) == 1:
            j += 1
        run = lines[i:j]
        if not run or not any(_named(line, [first]) for line in run):
            out.append(lines[i])
            i += 1
            continue
        out.extend(_rewrite(run, families))
        i = j
    return "\n".join(out)


def _others(line: str, families: list[str]) -> list[str]:
    """Names of families no longer in the list, so that a removed family's lines are dropped too:
    any capitalised word directly before `EventsQueue`, `ConsumerFunction` or after `QUEUE_URL_`."""
    found = re.findall(r"([A-Z][A-Za-z0-9]*)(?:EventsQueue|EventsDeadLetterQueue|ConsumerFunction)", line)
    found += re.findall(r"QUEUE_URL_([A-Z][A-Za-z0-9]*)", line)
    return sorted({name for name in found if name not in families})


def _rewrite(run: list[str], families: list[str]) -> list[str]:
    first = families[0]
    pattern = [line.rstrip() for line in run if _named(line, [first])]
    # JSON lines end with a comma but the last of its array: keep the run's last line as it was.
    commas = any(line.rstrip().endswith(",") for line in run)
    last_comma = run[-1].rstrip().endswith(",")
    lines = [
        _for(family, first, line).removesuffix(",") if commas else _for(family, first, line)
        for family in families
        for line in pattern
    ]
    if commas:
        lines = [line + "," for line in lines[:-1]] + [lines[-1] + ("," if last_comma else "")]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if template.yaml is not current")
    parser.add_argument("template", nargs="?", type=Path, default=TEMPLATE_PATH)
    args = parser.parse_args(argv)
    text = args.template.read_text()
    try:
        current = render(text)
    except ValueError as exc:  # a list edited by hand: say what is wrong in one line
        print(f"{args.template.name}: {exc}", file=sys.stderr)
        return 1
    if current == text:
        print(f"{args.template.name}: per-family lines current for {', '.join(families_of(text))}")
        return 0
    if args.check:
        print(f"{args.template.name}: per-family lines are not current: run `make template`", file=sys.stderr)
        return 1
    args.template.write_text(current)
    print(f"{args.template.name}: per-family lines written for {', '.join(families_of(text))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
