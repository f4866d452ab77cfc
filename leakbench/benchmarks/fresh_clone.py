"""Wall time of the README's `leakbench run` in a fresh clone (the like-for-like issue's target: <= 10 minutes after
install on 2 cores), with the machine's speed measured in the same call.

    python -m leakbench.benchmarks.fresh_clone [--evalplus-dir ../shared/evalplus] [--keep DIR] [--json OUT.json]
        [-- RUN_ARGS]   (more arguments for `leakbench run`: another setting than the README's)

Clones this checkout's committed HEAD (`git clone`: only what git keeps, as a new user gets it) into a temporary
folder, times one privacy measurement of the shipped victim there from outside (`leakbench.benchmarks.privacy
--repeats 1` with Python's start-up and imports: the calibration), then runs the README's command in the clone
with this environment's packages and the clone's code, and checks that it left `git status` clean. Machines of
one type differ by up to 2x from day to day: compare run times only with their calibration beside them
(docs/study.md keeps both).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from leakbench.records import provenance, write_text_atomic

TARGET_S = 600.0
ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--evalplus-dir", type=Path, help="the official EvalPlus files (default: ../shared/evalplus "
                        "beside this checkout where it exists, else EvalPlus downloads them)")  # fmt: skip
    parser.add_argument("--keep", type=Path, help="clone here and keep it (default: a temporary folder, removed)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("run_args", nargs="*", help="after --: more arguments for `leakbench run`")
    args = parser.parse_args(argv)
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: not empty; name a new or empty folder to clone into")
    offline = ROOT.parent / "shared" / "evalplus"
    evalplus = args.evalplus_dir or (offline if offline.is_dir() else None)
    with tempfile.TemporaryDirectory(prefix="leakbench-clone-") as tmp:
        clone = args.keep or Path(tmp) / "leakbench"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        commit = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(clone)}  # the clone's code, this environment's packages
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "leakbench.benchmarks.privacy", "--model", "leakbench/models/victim",
                        "--repeats", "1"], cwd=clone, env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        calibration = time.perf_counter() - started
        command = ["leakbench", "run"] + (["--evalplus-dir", str(evalplus)] if evalplus else []) + args.run_args
        print(f"calibration (one privacy measurement of the shipped victim, with loading): {calibration:.1f} s; "
              f"now `{' '.join(command)}` in a clone of {commit[:12]}", flush=True)  # fmt: skip
        started = time.perf_counter()
        run = subprocess.Popen([sys.executable, "-m", "leakbench", *command[1:]], cwd=clone, env=env)
        _, status, usage = os.wait4(run.pid, 0)  # the run's own peak memory (its workers' included)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"leakbench run failed in {clone} (exit {os.waitstatus_to_exitcode(status)})")
        dirty = subprocess.run(["git", "-C", str(clone), "status", "--porcelain"], capture_output=True, text=True,
                               check=True).stdout.splitlines()  # fmt: skip
        summary = json.loads((clone / _out(args.run_args) / "summary.json").read_text(encoding="utf-8"))
    figures = {
        "commit": commit, "command": " ".join(command), "wall_s": round(wall, 1), "target_s": TARGET_S,
        "calibration_s": round(calibration, 1), "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),
        "git_status_clean": not dirty, "study_timings_s": summary.get("timings_s"),
    }  # fmt: skip
    verdict = "within" if wall <= TARGET_S else "over"
    print(f"fresh clone, `{figures['command']}`: {wall:.0f} s ({wall / 60:.1f} min), {verdict} the {TARGET_S:.0f} s "
          f"target; calibration {calibration:.1f} s; peak memory {figures['peak_rss_gib']} GiB; git status "
          + ("clean" if not dirty else f"not clean: {dirty[:5]}"))  # fmt: skip
    if args.json:
        write_text_atomic(args.json, json.dumps(provenance(**figures), indent=2) + "\n")
    return 0 if not dirty else 1


def _out(run_args: list[str]) -> str:
    """The study folder `leakbench run` writes with these arguments (its default when --out is not among them)."""
    for i, arg in enumerate(run_args):
        if arg == "--out" and i + 1 < len(run_args):
            return run_args[i + 1]
        if arg.startswith("--out="):
            return arg.removeprefix("--out=")
    return "runs/study"


if __name__ == "__main__":
    raise SystemExit(main())
