"""Write a seeded, realistic review corpus in one of the real file formats."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from reviewlake import cli
from reviewlake.generate import FORMATS, generate


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--format", required=True, choices=list(FORMATS))
    p.add_argument("--rows", type=int, default=100_000,
                   help="reviews to write (3600000 for the full Amazon polarity train size)")
    p.add_argument("--out", type=Path, help="output folder (default: <paths.data>/generated/<format>)")
    p.add_argument("--seed", type=int, help="default: generate.seed from config")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    out = args.out or cfg.paths.data / "generated" / args.format
    manifest = generate(
        args.format, out, args.rows,
        seed=cfg.generate.seed if args.seed is None else args.seed,
        malformed_share=cfg.generate.malformed_share, label_noise=cfg.generate.label_noise,
        duplicate_share=cfg.generate.duplicate_share,
        workers=args.workers,
    )
    print(f"wrote {manifest.rows:,} {args.format} reviews ({manifest.malformed_rows:,} malformed) to "
          f"{', '.join(manifest.files)}")
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
