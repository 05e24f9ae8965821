"""The README's and docs' commands and snippets stay runnable: every command names a script or module that
exists and only flags it defines; the README's Python snippet runs; the "Other modes" commands run as
written on the default config, with `--iterations 1` as the smallest budget (tune included, on 2 cores)."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import leftover_processes, tagged_env
from wealtharena.config import PROJECT_ROOT

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]


def _code_blocks(path: Path) -> list[tuple[str, str]]:
    """(language, text) of every fenced block."""
    return re.findall(r"```(\w*)\n(.*?)```", path.read_text(), flags=re.S)


def _commands(path: Path) -> list[str]:
    """Every `python ...` command line of a file's shell blocks (continuations joined, comments dropped)."""
    out = []
    for lang, text in _code_blocks(path):
        if lang not in ("bash", "sh", ""):
            continue
        for line in text.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            for part in re.split(r"&&|;", line):
                part = part.strip()
                if part.startswith("python "):
                    out.append(part)
    return out


def _target(words: list[str]) -> Path | None:
    """The file a `python` command runs (a script, or `-m` a module); None for `-m pytest` and the like."""
    if words[1] == "-m":
        module = words[2]
        if not module.startswith("wealtharena"):
            return None
        base = PROJECT_ROOT / "src" / Path(*module.split("."))
        return base / "__main__.py" if base.is_dir() else base.with_suffix(".py")
    return PROJECT_ROOT / words[1]


def _flags(path: Path) -> set[str]:
    """The `--flags` a script defines with argparse (its own `add_argument` calls and the CLI's shared helpers)."""
    flags: set[str] = set()
    for source in (path, PROJECT_ROOT / "src" / "wealtharena" / "cli.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                flags |= {a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("-")}
    return flags


def test_every_documented_command_names_a_script_that_exists_and_flags_it_defines():
    checked = 0
    for doc in DOCS:
        for command in _commands(doc):
            words = shlex.split(re.sub(r"\[|\]", " ", command).replace("<run>", "RUN"))
            target = _target(words)
            if target is None:
                continue
            assert target.is_file(), f"{doc.name}: `{command}` runs {target}, which does not exist"
            used = {w.split("=")[0] for w in words[2:] if w.startswith("--")}
            unknown = used - _flags(target)
            assert not unknown, f"{doc.name}: `{command}` uses {sorted(unknown)}, which {target.name} does not define"
            checked += 1
    assert checked >= 10, f"only {checked} commands found: has the README lost its code blocks?"


def test_the_readme_snippet_runs(tmp_path):
    """The README's Python block, as written, in a fresh folder (its own data cache)."""
    snippet = next(text for lang, text in _code_blocks(PROJECT_ROOT / "README.md") if lang == "python")
    proc = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_the_other_modes_run_as_written_with_the_smallest_budget(tmp_path):
    """Each command under the README's "Other modes" that trains, tunes or evaluates, on the default config
    with `--iterations 1`, in the order a user would (train with SAC, evaluate it, resume it, tune), plus the
    command-line studies and the data download; none leaves a process behind."""
    other = PROJECT_ROOT / "README.md"
    block = other.read_text().split("## Other modes", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [c.split("  #")[0].strip() for c in block.strip().splitlines()]

    def run(command: str) -> subprocess.CompletedProcess:
        words = shlex.split(command)
        if words[1].endswith(".py"):  # a script of the project, run from a fresh working folder
            words[1] = str(PROJECT_ROOT / words[1])
        env, tag = tagged_env()
        proc = subprocess.run(
            [sys.executable, *words[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=1800, env=env
        )
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
        assert leftover_processes(tag) == [], command  # the command's Ray processes ended with it
        return proc

    sac = next(c for c in commands if "--algorithm sac" in c)
    run(re.sub(r"--iterations \d+", "--iterations 1", sac) + " --no-progress")
    (run_dir,) = (tmp_path / "checkpoints" / "default").glob("*-s1")
    evaluate = next(c for c in commands if "--mode evaluate" in c and "--seeds" not in c)
    assert "report:" in run(evaluate.replace("checkpoints/default/<run>", str(run_dir))).stdout
    resume = next(c for c in commands if c.startswith("python train.py --checkpoint"))
    run(resume.replace("checkpoints/default/<run>", str(run_dir)) + " --iterations 1 --no-progress")
    # The tune command as written (its trials' runners fitted to the local Ray cluster's CPUs), on the default
    # config with one trial instead of four: each trial starts its own runners, which the smallest budget cannot
    # shorten. --iterations is each trial's budget.
    raw = yaml.safe_load((PROJECT_ROOT / "config" / "default.yaml").read_text())
    raw.setdefault("training", {}).setdefault("tune", {})["num_samples"] = 1
    (tmp_path / "one_trial.yaml").write_text(yaml.safe_dump(raw))
    tune = next(c for c in commands if "--mode tune" in c)
    assert "best trial checkpoint:" in run(tune + " --config one_trial.yaml --iterations 1 --no-progress").stdout
    (progress,) = (tmp_path / "checkpoints" / "default" / "tune").rglob("progress.csv")
    assert pd.read_csv(progress)["training_iteration"].max() == 1
    rules = next(c for c in commands if "wealtharena.evaluation.rules" in c)
    assert "equal weight" in run(rules).stdout
    download = next(c for c in commands if c.startswith("python download_data.py"))
    assert "tickers x" in run(download.split("[")[0]).stdout
