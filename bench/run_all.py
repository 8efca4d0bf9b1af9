"""Run every benchmark in bench/ one after the other and print their ratio tables.

Benchmarks time things against each other within one run (these machines are noisy): run them on
an idle machine. Each also writes its numbers to runs/bench/<name>.json.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import glob
import subprocess

from torch_utils_lib.toolkit.cli import ArgumentParser
from torch_utils_lib.toolkit.errors import run_main


HERE = os.path.dirname(os.path.abspath(__file__))
BENCHES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(HERE, "bench_*.py")))


def build_parser():
    p = ArgumentParser(
        example='python bench/run_all.py --only bench_eval',
        description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="*", choices=BENCHES, help="run just these")
    return p


def main():
    here, names = HERE, BENCHES
    args = build_parser().parse_args()
    failed = []
    for name in args.only or names:
        print(f"\n=== {name}", flush=True)
        if subprocess.run([sys.executable, os.path.join(here, f"{name}.py")]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main)
