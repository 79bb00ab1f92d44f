#!/usr/bin/env python3
"""The browser the end-to-end tests drive: Debian's Chromium (stdlib only).

    python3 scripts/browser.py          # install it if missing, print its path

`ensure_chromium()` is what a test runner calls before the browser tests
(tests/browser/): it returns the path of the system Chromium, installing the
Debian package with apt-get when it is missing and this process may do so
(root, or password-less sudo). Playwright's own browser downloads are not used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


class ChromiumUnavailable(RuntimeError):
    """Chromium is missing and could not be installed here."""


def find_chromium() -> Path | None:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    found = shutil.which("chromium")
    return Path(found) if found else None


def _apt_prefix() -> list[str]:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    raise ChromiumUnavailable(
        f"Chromium is not installed at {CHROMIUM} and this user cannot install it: "
        "run `sudo apt-get update && sudo apt-get install -y chromium`."
    )


def ensure_chromium(*, quiet: bool = False) -> Path:
    """The system Chromium's path; installs Debian's `chromium` package first if it is missing."""
    found = find_chromium()
    if found:
        return found
    if not shutil.which("apt-get"):
        raise ChromiumUnavailable(f"Chromium is not installed at {CHROMIUM} and there is no apt-get to install it.")
    prefix = _apt_prefix()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    output = subprocess.DEVNULL if quiet else None
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        if not quiet:
            print("==> " + " ".join(prefix + command), flush=True)
        result = subprocess.run(prefix + command, env=env, stdout=output, stderr=output)
        if result.returncode != 0:
            raise ChromiumUnavailable(f"`{' '.join(command)}` failed with exit code {result.returncode}.")
    found = find_chromium()
    if not found:
        raise ChromiumUnavailable(f"apt-get installed chromium but {CHROMIUM} is still missing.")
    return found


def main() -> int:
    try:
        print(ensure_chromium())
    except ChromiumUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
