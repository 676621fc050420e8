"""The repository carries its own docs: every relative link in README.md and docs/, and every ``docs/…md#anchor``
pointer in code, tests, benchmarks and notebooks, resolves to a file (and heading) inside the repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
CODE = [
    *sorted((ROOT / "lnlkit").rglob("*.py")),
    *sorted((ROOT / "tests").glob("*.py")),
    *sorted((ROOT / "bench").glob("*.py")),
    *sorted((ROOT / "notebooks").glob("*.ipynb")),
]

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
POINTER = re.compile(r"docs/[A-Za-z0-9_./-]+\.md(?:#[A-Za-z0-9_-]+)?")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Anchors of every heading of a markdown file (outside code fences); repeated headings get ``-1``, ``-2``."""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"#{1,6}\s+(.*)", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            out.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
    return out


def check(target: Path, anchor: str, where: str) -> list[str]:
    if not target.exists():
        return [f"{where}: {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target} does not exist"]
    if not target.resolve().is_relative_to(ROOT):
        return [f"{where}: {target} leaves the repository"]
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return [f"{where}: no heading #{anchor} in {target.relative_to(ROOT)}"]
    return []


def test_slug_follows_github():
    assert slug("P1 relabel slice") == "p1-relabel-slice"
    assert slug("P-M6 stem padding") == "p-m6-stem-padding"
    assert slug("Official-code issues and switches") == "official-code-issues-and-switches"
    assert slug("Run folders, the command line and the Python API") == "run-folders-the-command-line-and-the-python-api"


def test_docs_folder_has_every_page():
    for page in [
        "README.md",
        "datasets.md",
        "noise.md",
        "run_folder.md",
        "adding_a_method.md",
        "targets.md",
        "methods/ce.md",
        "methods/dividemix_smr.md",
        "methods/promix.md",
        "methods/comining.md",
        "methods/me_momentum.md",
        "methods/prune4rel_sop.md",
    ]:
        assert (ROOT / "docs" / page).is_file(), page


@pytest.mark.parametrize("md", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_resolve(md):
    problems = []
    text = md.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links inside code blocks are examples
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        problems += check((md.parent / path) if path else md, anchor, f"{md.relative_to(ROOT)} -> {target}")
    assert not problems, "\n".join(problems)


def test_code_pointers_into_docs_resolve():
    problems = []
    found = 0
    for f in CODE:
        for pointer in POINTER.findall(f.read_text(encoding="utf-8")):
            found += 1
            path, _, anchor = pointer.partition("#")
            problems += check(ROOT / path, anchor, f"{f.relative_to(ROOT)} -> {pointer}")
    assert found > 0, "no docs/ pointer found: the scan is broken"
    assert not problems, "\n".join(problems)


def test_no_reference_to_the_team_folder():
    """Nothing a user reads points at files outside the repository (the team's shared folder, its specs)."""
    outside = re.compile(r"\.\./shared/|shared/(?:DESIGN|specs|audit)|specs/[a-z_]+\.md|DESIGN\.md")
    hits = [
        f"{f.relative_to(ROOT)}:{i}: {line.strip()}"
        for f in [*MARKDOWN, *CODE]
        if f.name != Path(__file__).name
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert not hits, "\n".join(hits)
