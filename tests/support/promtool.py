"""promtool, Prometheus's checker of rule files, for the tests of monitoring/.

It comes from Debian's `prometheus` package. The machine's own promtool (on PATH) is
used when there is one; else a copy kept under the checkout's var/ (fetched once per
checkout); else Debian's package is downloaded with `apt-get download` (after an
`apt-get update` when the package lists do not know it and we are root) and only
promtool is unpacked from it into var/: nothing is installed, and Prometheus itself is
neither kept nor run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "prometheus"
MEMBER = "./usr/bin/promtool"  # where the package's file tree has it
CACHED = ROOT / "var" / "tools" / "promtool"
APT_TIMEOUT = 600  # seconds: a slow mirror, not a hung one


class PromtoolUnavailable(RuntimeError):
    """promtool could not be found or fetched: the alert-rule tests cannot run."""


def promtool() -> Path:
    """A promtool that runs: the machine's, the cached copy, or a freshly fetched one."""
    found = shutil.which("promtool")
    if found:
        return Path(found)
    if not _runs(CACHED):
        try:
            _fetch(CACHED)
        except OSError as error:  # var/ not writable, disk full, no dpkg-deb
            raise PromtoolUnavailable(
                f"the alert-rule tests need promtool: put it on PATH (Debian: apt-get install"
                f" {PACKAGE}); unpacking it into {CACHED} failed: {error}"
            ) from error
    return CACHED


def _runs(binary: Path) -> bool:
    if not binary.is_file():
        return False
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, timeout=30, check=False
        )
    except OSError:
        return False
    return done.returncode == 0


def _fetch(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix="promtool-") as scratch:
        directory = Path(scratch)
        deb = _download(directory)
        unpacked = directory / "promtool"
        _unpack(deb, unpacked)
        # Atomic: another test run in this checkout sees the whole binary or none.
        os.replace(unpacked, target)
    if not _runs(target):
        raise PromtoolUnavailable(f"{target}, unpacked from Debian's {PACKAGE}, does not run")


def _download(directory: Path) -> Path:
    """Debian's `prometheus` package, downloaded into `directory`."""
    attempt = _apt(["apt-get", "download", PACKAGE], directory)
    if attempt.returncode != 0 and os.geteuid() == 0:
        # A machine whose package lists were never fetched (or are stale) does not know
        # the package yet: fetch them once, as the browser tests do for Chromium.
        _apt(["apt-get", "update", "-qq"], directory)
        attempt = _apt(["apt-get", "download", PACKAGE], directory)
    debs = sorted(directory.glob(f"{PACKAGE}_*.deb"))
    if attempt.returncode != 0 or len(debs) != 1:
        raise PromtoolUnavailable(
            "the alert-rule tests need promtool: put it on PATH (Debian: apt-get install"
            f" {PACKAGE}); fetching Debian's {PACKAGE} package failed"
            f"{'' if os.geteuid() == 0 else ' (not root, so the package lists were not updated)'}"
            f":\n{attempt.stdout}{attempt.stderr}"
        )
    return debs[0]


def _apt(command: list[str], directory: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(
            command,
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=APT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PromtoolUnavailable(
            f"the alert-rule tests need promtool: put it on PATH (Debian: apt-get install"
            f" {PACKAGE}); running {' '.join(command)} failed: {error}"
        ) from error


def _unpack(deb: Path, target: Path) -> None:
    """Copy promtool out of the package's file tree (dpkg-deb streams it as a tar)."""
    # Reading stops at promtool: dpkg-deb's complaint about the closed pipe is noise.
    with subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(deb)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as dpkg:
        assert dpkg.stdout is not None
        with tarfile.open(fileobj=dpkg.stdout, mode="r|") as tree:
            for member in tree:
                if member.name == MEMBER and member.isfile():
                    source = tree.extractfile(member)
                    assert source is not None
                    with source, target.open("wb") as copy:
                        shutil.copyfileobj(source, copy)
                    break
            else:
                raise PromtoolUnavailable(f"{deb.name} has no {MEMBER}")
        dpkg.stdout.close()
    target.chmod(0o755)
