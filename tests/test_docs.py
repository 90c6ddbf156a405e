"""The documentation against the code it describes, so neither can drift (no SparkSession).

README.md is the front page, docs/ holds the rest and CONTRIBUTING.md the code's layout. Each
test reads a document and compares it with the one place the fact is defined: defaults.yaml for
config keys, the CLI's argparse parser for options, growth_revenue.exit_codes for exit codes,
the file tree for links and modules, bench/results/ for the benchmark figures.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
REFERENCE = ROOT / "docs" / "reference.md"
PACKAGE = ROOT / "lib" / "growth_revenue"
README_MAX_LINES = 300

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"(?<!!)\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def documents() -> list[Path]:
    return [README, CONTRIBUTING, *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def section(path: Path, title: str) -> list[str]:
    """The lines under the heading `title` up to the next heading of the same or a higher level."""
    lines = path.read_text().splitlines()
    fenced, start, level = False, None, 0
    for index, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else HEADING.match(line)
        if heading and start is None and heading.group(2) == title:
            start, level = index + 1, len(heading.group(1))
        elif heading and start is not None and len(heading.group(1)) <= level:
            return lines[start:index]
    assert start is not None, f"{path.relative_to(ROOT)} has no heading {title!r}"
    return lines[start:]


def table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of every Markdown table row in `lines`, header and separator rows left out."""
    rows = []
    for line in lines:
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if all(re.fullmatch(r":?-+:?", cell) for cell in cells):
            continue
        rows.append(cells)
    return rows[1:] if rows else rows  # the first row is the header


def github_anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path.read_text()):
        heading = HEADING.match(line)
        if not heading:
            continue
        base = github_anchor(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def default_keys() -> set[str]:
    defaults = yaml.safe_load((PACKAGE / "defaults.yaml").read_text())
    return {f"{section}.{key}" for section, keys in defaults.items() for key in keys}


def test_reference_lists_exactly_the_config_keys_of_defaults_yaml():
    rows = table_rows(section(REFERENCE, "Configuration keys"))
    documented = [cell.strip("`") for cell, *_ in rows]
    assert len(documented) == len(set(documented)), f"keys documented twice: {documented}"
    keys = default_keys()
    assert set(documented) == keys, (
        f"docs/reference.md 'Configuration keys' vs defaults.yaml: "
        f"missing {sorted(keys - set(documented))}, not in defaults.yaml {sorted(set(documented) - keys)}"
    )


def test_reference_lists_exactly_the_options_of_the_cli_parser():
    from growth_revenue import cli  # imported here: its imports are the part of the code that moves

    parser = cli.build_parser()
    options = {option for action in parser._actions for option in action.option_strings}
    rows = table_rows(section(REFERENCE, "Options"))
    documented = {match for cells in rows for match in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", cells[0])}
    assert documented == options, (
        f"docs/reference.md 'Options' vs cli.build_parser(): "
        f"missing {sorted(options - documented)}, not in the parser {sorted(documented - options)}"
    )


def test_readme_exit_code_table_is_exactly_exit_codes_ExitCode():
    from growth_revenue.exit_codes import ExitCode

    rows = table_rows(section(README, "Exit codes"))
    documented = {int(cells[0]): cells[1] for cells in rows}
    assert len(documented) == len(rows), "an exit code appears twice in README's table"
    assert documented == {code.value: code.meaning for code in ExitCode}, (
        "README 'Exit codes' must be written from growth_revenue.exit_codes.ExitCode: "
        "one row per member, `| value | meaning |`"
    )


def test_every_relative_link_points_at_a_file_and_anchor_that_exist():
    broken = []
    for doc in documents():
        for number, line in prose_lines(doc.read_text()):
            for target in LINK.findall(INLINE_CODE.sub("", line)):
                if EXTERNAL.match(target):
                    continue
                path_part, _, anchor = target.partition("#")
                path = (doc.parent / path_part).resolve() if path_part else doc
                where = f"{doc.relative_to(ROOT)}:{number}: {target}"
                if not path.exists():
                    broken.append(f"{where} (no such file)")
                elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                    broken.append(f"{where} (no heading with that anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_readme_is_a_front_page_of_at_most_300_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (limit {README_MAX_LINES})"


def test_readme_performance_lines_are_those_the_stored_bench_results_give():
    sys.path.insert(0, str(ROOT / "bench"))
    import results_doc

    scales = results_doc.load_all(ROOT / "bench" / "results")
    text = README.read_text()
    assert results_doc.with_readme_summary(text, scales) == text, (
        "README's Performance lines differ from bench/results/: run `python bench/results_doc.py`"
    )
    assert "Nightly over 10,000,000 orders" in "\n".join(section(README, "Performance"))


def test_contributing_layout_lists_exactly_the_modules_of_the_package():
    block, in_block, in_package = [], False, False
    for line in section(CONTRIBUTING, "Project layout"):
        if FENCE.match(line):
            if in_block:
                break
            in_block = True
            continue
        if in_block:
            block.append(line)
    listed = []
    for line in block:
        if line.startswith("lib/growth_revenue/"):
            in_package = True
        elif in_package and line.startswith((" ", "\t")) and line.split()[0].endswith(".py"):
            listed.append(line.split()[0])
        elif in_package and not line.startswith((" ", "\t")):
            in_package = False
    modules = {path.name for path in PACKAGE.glob("*.py")}
    missing, extra = sorted(modules - set(listed)), sorted(set(listed) - modules)
    twice = sorted({name for name in listed if listed.count(name) > 1})
    assert not (missing or extra or twice), (
        "CONTRIBUTING.md 'Project layout' vs lib/growth_revenue/*.py: "
        f"missing {missing}, listed but not in the package {extra}, listed twice {twice}"
    )
