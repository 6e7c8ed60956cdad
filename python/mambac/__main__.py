"""`python -m mambac ARGS`: the mambac command line (generate, chat, serve, train, eval, ...)
that the package installed beside itself; the same program as the C build's `mambac`."""

import os
import sys
from pathlib import Path


def cli_path() -> str:
    env = os.environ.get("MAMBAC_CLI")
    if env:
        return env
    here = Path(__file__).resolve().parent
    for cand in (here / "bin" / "mambac", here.parent.parent / "build" / "mambac"):
        if cand.exists():
            return str(cand)
    raise SystemExit("mambac: the command-line program is not installed beside the package (mambac/bin/mambac); "
                     "reinstall with `pip install .` or set MAMBAC_CLI")


def main() -> None:
    exe = cli_path()
    os.execv(exe, [exe] + sys.argv[1:])


if __name__ == "__main__":
    main()
