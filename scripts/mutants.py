"""Mutation testing of the modules where a silent bug costs data or truth (`make mutants`; not in CI: slow).

Each target runs mutmut (3.8) in a copy of the working tree under .mutants/<target>/, mutating only the
target's files and running only the target's tests, so a run fits on a laptop. Results stay in that copy:
a second run re-tests only what changed. Prints killed / total per target and lists the survivors; see
docs/mutants.md for the last measured figures and why each survivor is equivalent or which test kills it.

    python scripts/mutants.py                 # every target
    python scripts/mutants.py provider-retry  # some targets
    python scripts/mutants.py --list

Needs the test services (PostgreSQL, Redis) like `make pytest`; it uses its own test database
(TEST_DATABASE_NAME with a `_mutants` suffix), kept between mutants (--reuse-db).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutants"
SOURCE_DIRS = ["annotate", "pipeline", "scoring", "core", "config"]
ALSO_COPY = ["manage.py", "conftest.py", "templates", "static"]


@dataclass(frozen=True)
class Target:
    files: tuple[str, ...]
    tests: tuple[str, ...]


TARGETS: dict[str, Target] = {
    "provider-retry": Target(
        ("pipeline/mllm/providers/retry.py",),
        ("pipeline/mllm/tests/test_retry_rules.py", "pipeline/mllm/tests/test_openai_replies.py"),
    ),
    "mllm-parsing": Target(("pipeline/mllm/parsing.py",), ("pipeline/mllm/tests/test_parsing.py",)),
    "crowd-id": Target(
        ("annotate/services/crowd.py",),
        ("tests/annotate/test_crowd_entry.py", "tests/annotate/test_crowd_hardening.py"),
    ),
    "image-checks": Target(
        ("annotate/services/images.py",),
        ("tests/annotate/test_image_trailing_data.py", "tests/annotate/test_ingestion.py"),
    ),
    "assignments": Target(
        ("annotate/services/assignments.py",),
        (
            "tests/annotate/test_assign_engine.py",
            "tests/annotate/test_assign_concurrency.py",
            "tests/annotate/test_label_submit.py",
        ),
    ),
    "judgment-submit": Target(
        ("annotate/services/judgments.py",),
        (
            "tests/annotate/test_label_submit.py",
            "tests/annotate/test_assign_concurrency.py",
            "tests/annotate/test_quality_control.py",
            "tests/annotate/test_scores_undo_qc.py",
        ),
    ),
    "judgment-import": Target(("scoring/services/judgments_io.py",), ("tests/scoring/test_judgments_io.py",)),
    "scoring-stats": Target(("scoring/stats/*.py",), ("scoring/stats/tests",)),
}


def copy_tree(dest: Path) -> None:
    """The working tree as git sees it (tracked and untracked, not ignored), with a link to the venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists() or target.read_bytes() != source.read_bytes():
                shutil.copy2(source, target)
    if not (dest / ".venv").exists():
        (dest / ".venv").symlink_to(ROOT / ".venv")


def configure(dest: Path, target: Target) -> None:
    """Append this target's [tool.mutmut] section to the copy's pyproject.toml."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    section = "\n".join(
        [
            "",
            "[tool.mutmut]",
            f"source_paths = {json.dumps(SOURCE_DIRS)}",
            f"only_mutate = {json.dumps(list(target.files))}",
            f"also_copy = {json.dumps(ALSO_COPY)}",
            f"pytest_add_cli_args_test_selection = {json.dumps(list(target.tests))}",
            'pytest_add_cli_args = ["--reuse-db", "-p", "no:cacheprovider"]',
            "",
        ]
    )
    (dest / "pyproject.toml").write_text(pyproject + section)


def tally(dest: Path) -> dict[str, list[str]]:
    """Mutant names by status, from mutmut's result files."""
    from mutmut.stats import status_by_exit_code

    by_status: dict[str, list[str]] = {}
    for meta in sorted((dest / "mutants").rglob("*.meta")):
        for name, code in json.loads(meta.read_text()).get("exit_code_by_key", {}).items():
            by_status.setdefault(status_by_exit_code[code], []).append(name)
    return by_status


def run_target(name: str, target: Target, *, children: int) -> dict[str, list[str]]:
    dest = WORK / name
    dest.mkdir(parents=True, exist_ok=True)
    copy_tree(dest)
    configure(dest, target)
    env = dict(os.environ)
    env["TEST_DATABASE_NAME"] = env.get("TEST_DATABASE_NAME", "test_visionprefer") + "_mutants"
    started = time.monotonic()
    mutmut = ROOT / ".venv" / "bin" / "mutmut"
    result = subprocess.run([str(mutmut), "run", "--max-children", str(children)], cwd=dest, env=env)
    by_status = tally(dest)
    total = sum(len(v) for v in by_status.values())
    killed = len(by_status.get("killed", [])) + len(by_status.get("timeout", []))
    score = killed / total if total else float("nan")
    print(
        f"\n== {name}: {killed}/{total} killed ({score:.1%}) in {time.monotonic() - started:.0f} s"
        f" (mutmut exit {result.returncode}, load {os.getloadavg()[0]:.2f})"
    )
    for status, names in sorted(by_status.items()):
        if status not in ("killed", "timeout"):
            for mutant in names:
                print(f"   {status}: {mutant}")
    return by_status


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("targets", nargs="*", help="targets to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument(
        "--children", type=int, default=1, help="mutants tested at once (one test DB: keep 1)"
    )
    args = parser.parse_args()
    if args.list:
        for name, target in TARGETS.items():
            print(f"{name}: {', '.join(target.files)}  <-  {', '.join(target.tests)}")
        return 0
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))} (see --list)")
    scores = {}
    for name in args.targets or list(TARGETS):
        by_status = run_target(name, TARGETS[name], children=args.children)
        total = sum(len(v) for v in by_status.values())
        killed = len(by_status.get("killed", [])) + len(by_status.get("timeout", []))
        scores[name] = (killed, total)
    print("\nmutation score per target (killed + timeout) / all mutants:")
    for name, (killed, total) in scores.items():
        print(f"  {name:16} {killed:4}/{total:<4} {killed / total if total else float('nan'):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
