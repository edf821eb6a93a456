"""What ships where: the parts of the library that the Lambda layer and the Glue job's ``--extra-py-files`` zip
hold, and nothing else (no local stack, simulator, operator tools or CLI in either).

Standard library only: ``sam build`` runs it (``src/Makefile``) in a copy of ``src/``, and so does a deploy::

    cd src && python3 -m pricefeed.local.bundle lambda DIR     # the layer's python/ folder
    cd src && python3 -m pricefeed.local.bundle glue FILE.zip  # the Glue job's library

``tests/unit/test_package_layout.py`` checks that each part holds everything its entry points import.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
#: Each part's modules (a folder stands for all of its modules), as the handlers and the Glue script import them;
#: the packages' ``__init__.py`` files come along.
PARTS: dict[str, tuple[str, ...]] = {
    # The handlers: plan, ingest, dead letters, tokens, OAuth pages, and the repair step's catalog (no Parquet
    # and no exchange calendar in Lambda).
    "lambda": (
        "config.py", "contracts.py", "errors.py", "istime.py", "market_hours.py", "metric_names.py", "nse_holidays.py",
        "session_hours.py", "symbol.py",
        "lake/envelope.py", "lake/masters.py", "lake/paths.py", "fyers", "auth", "ingest", "aggregate/catalog.py",
    ),
    # The job: raw answers to bars and the coverage ledger (the catalog step runs in Lambda).
    "glue": (
        "errors.py", "istime.py", "market_hours.py", "session_hours.py", "symbol.py", "trading_calendar.py", "lake",
        "aggregate/arguments.py", "aggregate/bars.py", "aggregate/candle_rules.py", "aggregate/candles.py",
        "aggregate/instrument_sessions.py",
        "aggregate/job.py",
        "aggregate/compact.py", "aggregate/ledger.py", "aggregate/outcomes.py", "aggregate/quarantine.py",
        "aggregate/raw_reader.py",
        "aggregate/spark.py", "aggregate/work.py",
    ),
}


def part_files(part: str, package: Path = PACKAGE) -> list[Path]:
    """The ``.py`` files of ``part`` (``lambda`` or ``glue``), relative to the package's parent folder."""
    if part not in PARTS:
        raise SystemExit(f"bundle: the part is {part!r}, not one of {', '.join(PARTS)}")
    chosen = {package / "__init__.py"}
    for entry in PARTS[part]:
        path = package / entry
        modules = path.rglob("*.py") if path.is_dir() else [path]
        for module in modules:
            chosen.add(module)
            chosen.update(folder / "__init__.py" for folder in module.parents if package in folder.parents)
    return sorted(p.relative_to(package.parent) for p in chosen if "__pycache__" not in p.parts)


def copy_part(part: str, dest: Path, package: Path = PACKAGE) -> list[Path]:
    """Copy ``part`` into ``dest`` (as ``dest/pricefeed/…``); returns the files written."""
    written = []
    for rel in part_files(part, package):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package.parent / rel, target)
        written.append(target)
    return written


def zip_part(part: str, archive: Path, package: Path = PACKAGE) -> Path:
    """A zip of ``part`` (``pricefeed/…`` at its root), byte-identical for the same sources."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in part_files(part, package):
            info = zipfile.ZipInfo(rel.as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, (package.parent / rel).read_bytes(), zipfile.ZIP_DEFLATED)
    return archive


def main(argv: list[str]) -> None:
    if len(argv) != 3 or argv[1] not in ("lambda", "glue"):
        raise SystemExit("usage: python3 -m pricefeed.local.bundle lambda DIR | glue FILE.zip")
    part, where = argv[1], Path(argv[2])
    if part == "lambda":
        print(f"bundle: {len(copy_part(part, where))} files of the library into {where}")
    else:
        print(f"bundle: the library's Glue part in {zip_part(part, where)}")


if __name__ == "__main__":
    main(sys.argv)
