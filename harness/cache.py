"""Where tokenproof keeps what outlives one run: the user's cache folder.

Never the working directory (a service's own folder, which tokenproof must
leave as it found it) and never the temp folder (which is for the run's
throwaway files, removed when the run ends). `TOKENPROOF_CACHE_DIR` moves the
whole cache.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

CACHE_ENV = "TOKENPROOF_CACHE_DIR"
HYPOTHESIS_ENV = "HYPOTHESIS_STORAGE_DIRECTORY"


def cache_dir() -> Path:
    """`$TOKENPROOF_CACHE_DIR`, else the platform's user cache (XDG) + tokenproof."""
    if explicit := os.environ.get(CACHE_ENV):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tokenproof"


def shared_cache_dir() -> Path:
    """For files another OS user must read: PostgreSQL binaries copied for the
    unprivileged server user when we run as root. Root's own cache lies under
    /root, which that user cannot enter, so root uses the system's cache
    folder (FHS /var/cache) instead."""
    if explicit := os.environ.get(CACHE_ENV):
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/cache/tokenproof")
    return cache_dir()


def slug(name: str) -> str:
    """A folder name for `name` (a target label, a command line): readable,
    safe, and distinct for distinct names."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:48] or "target"
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def keep_hypothesis_in_cache() -> None:
    """Point Hypothesis's storage (its `.hypothesis/` folder: caches of the code
    under test and of Unicode tables) at our cache instead of the working
    directory. The user's own HYPOTHESIS_STORAGE_DIRECTORY wins.

    The suites run with `derandomize=True`, which keeps no example database
    (the seed alone decides a run), so nothing here depends on the target.
    """
    if os.environ.get(HYPOTHESIS_ENV):
        return
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(cache_dir() / "hypothesis")
