"""Pack this environment (venv-pack) into one archive that cluster executors unpack: spark.env_archive,
build/env.tar.gz under --profile cluster. Runs without Spark. Again after a change to requirements/."""

from __future__ import annotations

import sys
from pathlib import Path

from reviewlake import cli
from reviewlake.pack import pack_environment


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--output", type=Path, help="the archive to write, *.tar.gz (default: spark.env_archive)")
    p.add_argument("--prefix", type=Path, help="the virtual environment to pack (default: this one, .venv)")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    print(pack_environment(cfg, args.output.resolve() if args.output else None,
                           args.prefix.resolve() if args.prefix else None).summary())
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
