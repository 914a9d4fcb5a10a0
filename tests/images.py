"""Container images for the tests, built offline (no registry is reachable):
a root filesystem from this machine's `node` binary and the libraries `ldd`
lists, plus a service, turned into an image by `docker import` with its
`CMD`, `WORKDIR` and `ENV`.

An image is tagged with a digest of what went into it, so a second run (or a
second xdist worker, which waits on a file lock) builds nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.foreign import Foreign

PROBE = """
"use strict";
// A tiny service for the supervision tests: /health, and /exit?code=N ends it.
const http = require("http");
if (process.env.PROBE_EXIT_AT_START) {
  console.log("probe: exiting at start as asked");
  process.exit(Number(process.env.PROBE_EXIT_AT_START));
}
const port = Number(process.env.PORT);
http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/exit") {
    console.log("probe: exiting with " + url.searchParams.get("code"));
    res.end("bye");
    setImmediate(() => process.exit(Number(url.searchParams.get("code"))));
    return;
  }
  res.end(url.pathname === "/health" ? "ok" : "probe");
}).listen(port, process.env.HOST || "127.0.0.1", () => {
  console.log("probe: listening on " + port + " DATABASE_URL=" + process.env.DATABASE_URL);
});
"""


def docker_ready() -> str | None:
    """None if a Docker daemon answers, else why not."""
    try:
        from harness.provisioning.container import DockerUnavailable, connect

        connect().close()
    except DockerUnavailable as exc:
        return str(exc)
    if shutil.which("docker") is None:
        return "the docker command-line client is not installed (docker import builds images)"
    return None


def need_docker() -> None:
    """The `needs_docker` policy, for fixtures shared beyond marked modules."""
    from tests.needs import check

    check("needs_docker")


def _node_files() -> list[tuple[Path, str]]:
    """(file on this machine, path in the image) for node and its libraries."""
    node = shutil.which("node")
    assert node is not None, "node is needed to build the test images"
    node_path = Path(node).resolve()
    return [(node_path, "usr/local/bin/node"), *_libraries([node_path])]


def _digest(
    files: list[tuple[Path, str]],
    trees: list[tuple[Path, str]],
    extra: str,
    skip: Callable[[str], bool],
) -> str:
    sha = hashlib.sha256(extra.encode())
    for source, name in files:
        stat = source.stat()
        sha.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for root, name in trees:
        if (root / "pyvenv.cfg").exists():  # a virtualenv: what was installed, and when
            for marker in ("pyvenv.cfg", ".installed"):
                if (root / marker).exists():
                    sha.update(f"{marker}:{(root / marker).stat().st_mtime_ns}".encode())
            continue
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if skip(f"{name.lstrip('/')}/{relative}"):
                continue
            if path.is_file() and "node_modules" not in relative.parts:
                sha.update(f"{name}/{relative}".encode())
                sha.update(path.read_bytes())
        lock = root / "node_modules" / ".package-lock.json"
        if lock.exists():
            sha.update(lock.read_bytes())
    return sha.hexdigest()[:12]


def _image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def build_image(
    name: str,
    trees: list[tuple[Path, str]],
    *,
    cmd: list[str],
    workdir: str,
    cache: Path,
    files: dict[str, str] | None = None,
    binaries: list[tuple[Path, str]] | None = None,
    skip: Callable[[str], bool] = lambda name: False,
) -> str:
    """Import a root filesystem (`binaries`, by default node and its libraries;
    `trees` copied to their paths in the image but for what `skip` says; `files`
    written) as an image; returns its tag."""
    node_files = _node_files() if binaries is None else binaries
    files = files or {}
    settings = json.dumps([cmd, workdir, files], sort_keys=True)
    tag = f"tokenproof-test/{name}:{_digest(node_files, trees, settings, skip)}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one xdist worker builds, the other waits
        if _image_exists(tag):
            return tag
        archive = cache / f"{name}.tar"
        with tarfile.open(archive, "w") as tar:
            tree_paths = {target.strip("/") for _, target in trees}
            for folder in {"tmp", "etc", workdir.strip("/")} - tree_paths:
                info = tarfile.TarInfo(folder)
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
                tar.addfile(info)
            for source, target in node_files:
                tar.add(source, arcname=target)
            for root, target in trees:
                tar.add(
                    root,
                    arcname=target.lstrip("/"),
                    filter=lambda info: None if skip(info.name) else info,
                )
            for target, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(target.lstrip("/"))
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        changes = [
            f"CMD {json.dumps(cmd)}",
            f"WORKDIR {workdir}",
            "ENV PATH=/usr/local/bin:/usr/bin:/bin",
            "ENV NODE_ENV=production",
        ]
        argv = ["docker", "import"]
        for change in changes:
            argv += ["--change", change]
        done = subprocess.run(
            [*argv, str(archive), tag], capture_output=True, text=True, timeout=600
        )
        archive.unlink()
        assert done.returncode == 0, f"docker import failed: {done.stderr}"
    return tag


def node_service_image(service: Foreign, cache: Path) -> str:
    """The Node foreign service (installed by `npm ci`) as an image: `node server.js`."""
    return build_image(
        service.name,
        [(service.cwd, "/app")],
        cmd=["node", "server.js"],
        workdir="/app",
        cache=cache,
    )


def probe_image(cache: Path) -> str:
    """Node with a 20-line HTTP server (tests of the container's supervision)."""
    return build_image(
        "probe",
        [],
        cmd=["node", "/probe/probe.js"],
        workdir="/probe",
        cache=cache,
        files={"/probe/probe.js": PROBE},
    )


def containers_of(run_label: str | None = None) -> Iterator[dict[str, str]]:
    """Containers (any state) labelled tokenproof.run (= `run_label` when given)."""
    label = "tokenproof.run" + ("" if run_label is None else f"={run_label}")
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={label}", "--format", "{{json .}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in out.stdout.splitlines():
        yield json.loads(line)


def _libraries(binaries: list[Path]) -> list[tuple[Path, str]]:
    """(file on this machine, path in the image) for what `ldd` lists for each binary."""
    found: dict[str, Path] = {}
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        for line in out.stdout.splitlines():
            match = re.search(r"(/\S+) \(0x", line)
            if match:
                found.setdefault(match.group(1), Path(match.group(1)).resolve())
    return [(source, path.lstrip("/")) for path, source in sorted(found.items())]


STDLIB_SKIP = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip"}


def python_service_image(service: Foreign, cache: Path) -> str:
    """A Python foreign service (a virtualenv from its pinned requirements, run by
    gunicorn) as an image: this interpreter's installation (standard library,
    without site-packages and tests) and the virtualenv at the same absolute paths
    as here (the virtualenv's links and scripts name them), the libraries `ldd`
    lists for the interpreter and every extension module, the service at /app."""
    gunicorn = Path(service.command.split()[0])
    venv = gunicorn.parents[1]
    prefix = Path(sys.base_prefix)
    stdlib = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    interpreter = Path(sys.base_prefix) / "bin" / stdlib.name
    binaries = [interpreter, *(prefix / "lib").glob("libpython*.so*")]
    extensions = [*(stdlib / "lib-dynload").glob("*.so"), *venv.rglob("*.so")]
    files = [(b.resolve(), str(b).lstrip("/")) for b in binaries]
    files += [
        (p, a)
        for p, a in _libraries([*binaries, *extensions])
        if not a.startswith(tuple(str(t).lstrip("/") for t in (prefix, venv)))
    ]

    def skip(name: str) -> bool:
        parts = Path(name).parts
        inside = str(stdlib).lstrip("/")
        return name.startswith(inside) and (
            bool(STDLIB_SKIP & set(parts[len(Path(inside).parts) :][:1])) or "__pycache__" in parts
        )

    return build_image(
        service.name,
        [(stdlib, str(stdlib)), (venv, str(venv)), (service.cwd, "/app")],
        cmd=[str(gunicorn), "-c", "gunicorn.conf.py", "app:app"],
        workdir="/app",
        cache=cache,
        binaries=files,
        skip=skip,
    )
