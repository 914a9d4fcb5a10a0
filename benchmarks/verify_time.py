"""Wall time of a full `tokenproof verify` (every suite, start-up included, as a
user sees it) on the reference and on each foreign service, clean and with a
defect switched on, side by side in one run:

    .venv/bin/python benchmarks/verify_time.py            # every target
    .venv/bin/python benchmarks/verify_time.py --suites   # also each suite alone, reference
    .venv/bin/python benchmarks/verify_time.py --only node-express   # one target (and its image)

A run that finds something should take at most about twice its clean time
(shrinking has a budget; a crashed or stalled service is restarted, not
waited for). Foreign services are installed into ~/.cache/tokenproof/foreign
the first time.

With a Docker daemon, the Node foreign service is also verified as an image
(`--target-image`, built offline by tests/images.py) on the line under the
same service started as a command: the container's cost (start, supervision,
restarts through the engine) is the difference.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from harness.cache import cache_dir
from harness.run.scenario import SUITE_MODULES
from tests.foreign import Foreign, names, prepare
from tests.images import docker_ready, node_service_image

CACHE = cache_dir() / "foreign"  # the foreign services, installed once
# The defect timed for each target: one whose findings span several suites.
DEFECTS = {
    "reference": "lost-update",
    "node-express": "lost-update",
    "flask-psycopg": None,
    "node-bullmq": "retry-recredits",
}


def timed(args: list[str]) -> tuple[float, int]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "harness", "verify", *args], capture_output=True, text=True
    )
    return time.monotonic() - started, result.returncode


def row(name: str, clean_args: list[str], defect_args: list[str] | None, defect: str) -> None:
    clean, code = timed(clean_args)
    line = f"{name:<22} clean {clean:6.1f} s (exit {code})"
    if defect_args is not None:
        found, code = timed(defect_args)
        line += f"   {defect:<24} {found:6.1f} s (exit {code})   ratio {found / clean:4.2f}"
    print(line, flush=True)


def image_row(service: Foreign, defect: str | None) -> None:
    """The same service as a container image, beside its command line."""
    reason = docker_ready()
    if reason is not None:
        print(f"{service.name + ' (image)':<22} skipped: {reason}", flush=True)
        return
    image = node_service_image(service, CACHE / "images")
    args = ["--target-image", image]
    env = [] if defect is None else ["--target-env", f"TOKENPROOF_DEFECT={defect}"]
    row(f"{service.name} (image)", args, None if defect is None else args + env, f"{defect}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", action="store_true", help="each suite alone on the reference")
    parser.add_argument(
        "--only", metavar="NAME", help="only this target (reference or a foreign service)"
    )
    options = parser.parse_args()
    if options.only in (None, "reference"):
        row("reference", [], ["--target", "reference:lost-update"], "reference:lost-update")
    for name in names():
        if options.only not in (None, name):
            continue
        service = prepare(name, CACHE)
        defect = DEFECTS.get(name) or next(
            (d for d, spec in service.defects.items() if spec.get("expect")), None
        )
        row(
            name,
            service.verify_args(),
            None if defect is None else service.verify_args(defect),
            f"{defect}",
        )
        if name == "node-express":  # the image tests.images builds (node-bullmq needs Redis too)
            image_row(service, defect)
    if options.suites:
        for suite in SUITE_MODULES:
            seconds, code = timed(["--suite", suite])
            print(f"--suite {suite:<8} {seconds:6.1f} s  exit {code}", flush=True)


if __name__ == "__main__":
    main()
