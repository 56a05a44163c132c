"""Checks the systemd units with ``systemd-analyze verify`` (no installed kws-edge needed).

The units' ``ExecStart`` points at /opt/kws-edge/bin/kws-edge; a copy of each unit pointing
at a stub executable is verified instead, so only the unit's own problems are reported.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

INSTALLED = "/opt/kws-edge/bin/kws-edge"


def verify(units: list[Path]) -> tuple[bool, str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return True, "systemd-analyze not installed"
    with tempfile.TemporaryDirectory() as tmp:
        stub = Path(tmp) / "kws-edge"
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
        copies = []
        for unit in units:
            copy = Path(tmp) / Path(unit).name
            copy.write_text(Path(unit).read_text().replace(INSTALLED, str(stub)))
            copies.append(str(copy))
        proc = subprocess.run([tool, "verify", "--man=no", *copies], capture_output=True,
                              text=True, timeout=120)
    out = (proc.stdout + proc.stderr).strip()
    # Only complaints about our units count (the host's own units may be noisy).
    ours = [line for line in out.splitlines()
            if any(Path(u).name in line for u in units) or "kws" in line]
    return proc.returncode == 0 and not ours, out


def main(argv: list[str]) -> int:
    ok, out = verify([Path(a) for a in argv])
    if out:
        print(out)
    print("units OK" if ok else "units: problems above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
