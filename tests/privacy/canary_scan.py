"""Search files for canary values: raw bytes on disk, and the decrypted rows of a tenant's warehouse."""

from __future__ import annotations

import os
import subprocess
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from privacy.keys import load_tenant_keys
from spendlake.paths import tenant_dir
from targets.warehouse.duckdb_store import ALIAS, connect_warehouse, quote_identifier
from targets.warehouse.parquet_store import read_parquet_file

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


@dataclass
class WarehouseDump:
    """Text dumps of every decrypted DuckDB table and Parquet file, and the row counts read per table."""

    folder: Path
    duckdb_rows: dict[str, int] = field(default_factory=dict)
    parquet_rows: dict[str, int] = field(default_factory=dict)

    def table_of(self, path: Path) -> tuple[str, str]:
        """Return the store (`duckdb` or `parquet`) and the `<schema>.<table>` whose rows a dump file contains."""
        relative = path.relative_to(self.folder)
        if relative.parts[0] == "duckdb":
            return "duckdb", relative.name.removesuffix(".tsv")
        return "parquet", ".".join(relative.parts[1:3])


def find_needles(paths: Sequence[Path], needles: Iterable[str], scratch: Path) -> dict[Path, set[str]]:
    """Return, per file under `paths`, the needles its bytes contain.

    grep's multi-pattern fixed-string search reads every file as bytes (`--text`,
    `LC_ALL=C`), so binary files, UTF-8 text and escapes are all searched.
    """
    patterns = sorted(set(needles))
    if not patterns or min(len(pattern) for pattern in patterns) == 0:
        msg = "The needle list is empty or holds an empty string, which would match every file."
        raise ValueError(msg)

    scratch.mkdir(parents=True, exist_ok=True)
    pattern_file = scratch / "needles.txt"
    pattern_file.write_text("\n".join(patterns) + "\n", encoding="utf-8")
    found = subprocess.run(
        [
            "grep",
            "--recursive",
            "--fixed-strings",
            "--text",
            "--only-matching",
            "--with-filename",
            "--null",
            "--file",
            str(pattern_file),
            *(str(path) for path in paths),
        ],
        capture_output=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
        check=False,
    )
    # grep exits 1 when nothing matched and 2 on an error, such as an unreadable file.
    if found.returncode not in (0, 1):
        msg = f"grep failed with exit code {found.returncode}: {found.stderr.decode(errors='replace')}"
        raise RuntimeError(msg)

    hits: dict[Path, set[str]] = {}
    for line in found.stdout.split(b"\n"):
        if not line:
            continue
        name, _, match = line.partition(b"\0")
        hits.setdefault(Path(os.fsdecode(name)), set()).add(match.decode("utf-8", errors="replace"))
    return hits


def dump_warehouse(home: Path, tenant: str, folder: Path) -> WarehouseDump:
    """Write every row of every DuckDB table and Parquet file of the tenant, decrypted, as tab-separated text.

    Files land under `folder/duckdb/<schema>.<table>.tsv` and
    `folder/parquet/<path of the Parquet file>.tsv`.
    """
    dump = WarehouseDump(folder=folder)
    _dump_duckdb(home, tenant, folder / "duckdb", dump)
    _dump_parquet(home, tenant, folder / "parquet", dump)
    return dump


def _dump_duckdb(home: Path, tenant: str, folder: Path, dump: WarehouseDump) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with connect_warehouse(home, tenant, read_only=True) as connection:
        tables = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = ? and table_type = 'BASE TABLE' order by 1, 2",
            [ALIAS],
        ).fetchall()
        for schema, table in tables:
            sql = f"select * from {quote_identifier(schema)}.{quote_identifier(table)}"  # noqa: S608 - quoted catalog names
            rows = connection.execute(sql).fetchall()
            _write_rows(folder / f"{schema}.{table}.tsv", rows)
            dump.duckdb_rows[f"{schema}.{table}"] = len(rows)


def _dump_parquet(home: Path, tenant: str, folder: Path, dump: WarehouseDump) -> None:
    lake = tenant_dir(home, tenant) / "parquet"
    keys = load_tenant_keys(home, tenant)
    for path in sorted(lake.rglob("*.parquet")):
        relative = path.relative_to(lake)
        table = read_parquet_file(path, keys)
        rows = [tuple(row.values()) for row in table.to_pylist()]
        _write_rows(folder / relative.parent / f"{relative.name}.tsv", rows)

        # The lake's layout is <source>/<stream>/..., possibly with partition folders below.
        stream = ".".join(relative.parts[:2])
        dump.parquet_rows[stream] = dump.parquet_rows.get(stream, 0) + len(rows)


def _write_rows(path: Path, rows: Iterable[tuple[t.Any, ...]]) -> None:
    """Write one line per row, cells separated by tabs; needles hold no tab or newline, so no match spans two cells."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", errors="surrogatepass") as handle:
        for row in rows:
            handle.write("\t".join("" if cell is None else str(cell) for cell in row) + "\n")
