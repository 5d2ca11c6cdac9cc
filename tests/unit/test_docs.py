"""The documentation's links and commands: every relative link in README.md and docs/*.md
reaches a file and, with ``#anchor``, a heading of it (GitHub's slugs); every ``make
<target>`` written in a code span or code block is a target of the Makefile; and the
README stays a front page (at most 400 lines)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

README_MAX_LINES = 400
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`+([^`]+)`+")
MAKE = re.compile(r"\bmake ([a-z][a-z0-9_-]*)\b(?!=)")
TARGET = re.compile(r"^([A-Za-z0-9_-]+)\s*:(?!=)", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def split_code(text: str) -> tuple[list[str], list[str]]:
    """(prose lines, code lines): lines inside fenced blocks are code."""
    prose: list[str] = []
    code: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        (code if fenced else prose).append(line)
    return prose, code


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation but ``-`` and ``_`` dropped,
    spaces to ``-``."""
    text = CODE_SPAN.sub(lambda m: m.group(1), heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file; a repeated one gets ``-1``, ``-2`` ..."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in split_code(path.read_text())[0]:
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    """The link targets of a markdown file's prose (not of code)."""
    prose = "\n".join(split_code(path.read_text())[0])
    return LINK.findall(CODE_SPAN.sub("", prose))


def broken_links(path: Path) -> list[str]:
    """Relative links of ``path`` whose file or anchor does not exist."""
    broken = []
    for target in links(path):
        if target.startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{path.name}: {target} (no such file)")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{path.name}: {target} (no such heading)")
    return broken


def make_targets(makefile: Path) -> set[str]:
    return set(TARGET.findall(makefile.read_text()))


def named_make_targets(path: Path) -> set[str]:
    """Targets of every ``make <target>`` in a code span or a code block of ``path``."""
    prose, code = split_code(path.read_text())
    spans = [m.group(1) for line in prose for m in CODE_SPAN.finditer(line)]
    return {t for text in [*spans, *code] for t in MAKE.findall(text)}


def unknown_make_targets(path: Path, makefile: Path) -> set[str]:
    return named_make_targets(path) - make_targets(makefile)


def test_every_relative_link_resolves():
    assert [b for path in doc_files() for b in broken_links(path)] == []


def test_every_make_target_named_exists():
    makefile = ROOT / "Makefile"
    unknown = {
        f"{p.name}: make {t}" for p in doc_files() for t in unknown_make_targets(p, makefile)
    }
    assert unknown == set()


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= README_MAX_LINES


def test_the_docs_folder_has_its_topics():
    names = {p.name for p in doc_files()[1:]}
    assert {"architecture.md", "contributing.md", "data.md", "pipeline.md"} <= names


def test_slugs_follow_github():
    assert slug("CI: the GitHub workflow and `make ci`") == "ci-the-github-workflow-and-make-ci"
    assert slug("Scale-out and contention (`make bench`)") == "scale-out-and-contention-make-bench"
    assert slug("Files_and more!") == "files_and-more"


def test_the_checker_catches_a_broken_anchor_and_an_unknown_target(tmp_path):
    (tmp_path / "Makefile").write_text("X := 1\ntrain: install ## Run\n\tcmd\ninstall:\n")
    other = tmp_path / "other.md"
    other.write_text("# Other\n\n## Same\n\n## Same\n\n```\n# not a heading\n```\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Doc\n\n"
        "[ok](other.md#same-1) [ok](#doc) [bad](other.md#not-a-heading) [bad](#nope)\n"
        "[gone](missing.md) [web](https://example.com/#x) `[code](nowhere.md)`\n\n"
        "Run `make train GRAN=hour` or `make deploy`.\n\n"
        "```bash\nmake install\nmake X=1\nmake publish\n```\n"
    )
    assert broken_links(doc) == [
        "doc.md: other.md#not-a-heading (no such heading)",
        "doc.md: #nope (no such heading)",
        "doc.md: missing.md (no such file)",
    ]
    assert anchors(other) == {"other", "same", "same-1"}
    assert unknown_make_targets(doc, tmp_path / "Makefile") == {"deploy", "publish"}


def documented_targets(makefile: Path) -> set[str]:
    """Targets with a ``## help`` line: the ones ``make help`` lists for users."""
    return set(re.findall(r"^([A-Za-z0-9_-]+)\s*:[^=\n]*##", makefile.read_text(), re.MULTILINE))


def test_the_commands_table_lists_every_target():
    readme = ROOT / "README.md"
    assert documented_targets(ROOT / "Makefile") - named_make_targets(readme) == set()
