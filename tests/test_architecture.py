"""The layering holds: import-linter's contracts pass, fail when broken, and no two modules import each other.

The contracts live in pyproject.toml (a layers contract config > api > scoring > pipeline > annotate > core, and a
forbidden contract that keeps Django out of the ML kits, indirect imports included). The second test proves
the check has teeth: it copies the code to a scratch folder, plants a violation, and expects lint-imports
to fail naming the contract.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "api", "scoring", "pipeline", "annotate", "core")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _strongly_connected(edges: dict[str, set[str]]) -> Iterator[list[str]]:
    """Tarjan's algorithm, iterative: every strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    yield sorted(component)


def test_no_two_modules_import_each_other_even_through_others(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    graph = grimp.build_graph(*PACKAGES)
    ours = {m for m in graph.modules if m.split(".")[0] in PACKAGES}
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in ours} for m in ours}
    assert list(_strongly_connected(edges)) == []
    # The checker itself finds a planted circle.
    assert list(_strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})) == [["a", "b", "c"]]


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
    )


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of the code (Python files and the contract config) that a test may break."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "migrations", "tests"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.slow
def test_the_contracts_pass_and_each_fails_when_broken(scratch: Path):
    clean = _lint(scratch)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "2 kept, 0 broken" in clean.stdout

    # An upward import: annotate (campaigns, labels) reaching into pipeline.
    (scratch / "annotate" / "upward.py").write_text("from pipeline.services import judges  # noqa\n")
    layered = _lint(scratch)
    assert layered.returncode != 0
    assert "Layers: config > api > scoring > pipeline > annotate > core BROKEN" in layered.stdout
    (scratch / "annotate" / "upward.py").unlink()

    # A kit reaching Django only indirectly: scoring.stats -> scoring.charts -> django.utils.
    (scratch / "scoring" / "stats" / "sneaky.py").write_text("from scoring import charts  # noqa\n")
    forbidden = _lint(scratch)
    assert forbidden.returncode != 0
    assert "Kits import no Django, no Celery and nothing of the web app BROKEN" in forbidden.stdout
