"""`workshop backup` / `workshop restore`: a consistent snapshot of SQLite and Redis.

Backup runs while traffic flows:

- SQLite through the online backup API (`sqlite3.Connection.backup`), which copies a
  transaction-consistent image page by page even with the storage-service writing (WAL);
- Redis through `BGSAVE` (a fork-time consistent RDB); we wait until `LASTSAVE` moves and
  `rdb_bgsave_in_progress:0` before copying `dump.rdb`. When Redis is not running the files on
  disk are already quiescent and are copied as they are (the AOF directory included);
- `manifest.json`: time, row and stream counts, the SQLite schema version and the sha256 of
  every file, which restore verifies before it touches anything.

Restore refuses while the stack runs. Redis 7.0 with `appendonly yes` loads *only* the AOF and,
when the AOF directory is missing, starts EMPTY and ignores `dump.rdb` (checked against
redis-server 7.0.15). So restore writes a multi-part AOF whose base file is the snapshot's RDB
(`appendonlydir/appendonly.aof.1.base.rdb` + a manifest naming it): Redis loads the snapshot
and appends new writes after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from stack.native.config import NativeConfig
from stack.native.supervisor import Supervisor, redis_ping

MANIFEST_VERSION = 1
DB_NAME = "feedback.db"
RDB_NAME = "dump.rdb"
AOF_DIR = "appendonlydir"
AOF_BASE = "appendonly.aof.1.base.rdb"
AOF_MANIFEST = "appendonly.aof.manifest"

app = typer.Typer(no_args_is_help=False, add_completion=False)
console = Console()


class BackupError(RuntimeError):
    """Something the user can fix; the message says how."""


@dataclass
class Manifest:
    created_at: str
    source_data_dir: str
    db_schema_version: int
    redis_mode: str  # "bgsave" (live) or "offline" (files copied from a stopped Redis)
    counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    manifest_version: int = MANIFEST_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        path = directory / "manifest.json"
        if not path.exists():
            raise BackupError(f"{directory} holds no manifest.json: not a `workshop backup`")
        unreadable = f"{path} is not a manifest `workshop backup` wrote"
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise BackupError(f"{unreadable}: {exc}") from None
        if not isinstance(data, dict):
            raise BackupError(f"{unreadable}: not a JSON object")
        if data.get("manifest_version") != MANIFEST_VERSION:
            raise BackupError(
                f"unsupported manifest version {data.get('manifest_version')!r} "
                f"(this kit reads {MANIFEST_VERSION})"
            )
        try:
            manifest = cls(**data)
        except TypeError as exc:  # a field missing or unknown
            raise BackupError(f"{unreadable}: {exc}") from None
        files = manifest.files
        if not isinstance(files, dict) or not all(
            isinstance(meta, dict) and isinstance(meta.get("sha256"), str)
            for meta in files.values()
        ):
            raise BackupError(f"{unreadable}: every file needs its sha256")
        return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _noop(_msg: str) -> None:
    pass


# ---- backup ---------------------------------------------------------------------------------
def _backup_sqlite(cfg: NativeConfig, out: Path) -> tuple[int, dict[str, int]]:
    src_path = cfg.data_dir / DB_NAME
    if not src_path.exists():
        raise BackupError(f"no database at {src_path}: has the stack ever run with this data dir?")
    dst_path = out / DB_NAME
    dst_path.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(dst_path)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        # pages=-1: one step, so the copy is a single consistent read transaction.
        src.backup(dst, pages=-1)
        # The snapshot is a standalone file: no WAL beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the snapshot failed PRAGMA integrity_check: {check}")
        version = int(dst.execute("PRAGMA user_version").fetchone()[0])
        counts = {}
        for table in ("jobs", "feedback"):
            try:
                counts[table] = int(dst.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            except sqlite3.OperationalError:
                counts[table] = 0
        return version, counts
    finally:
        src.close()
        dst.close()


def _bgsave(cfg: NativeConfig, out: Path, timeout: float = 60) -> dict[str, int]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=cfg.redis_port, socket_timeout=10)
    try:
        before = client.lastsave()
        # LASTSAVE has one-second resolution: a save finishing in the same second as the
        # previous one would not move it. Start in a later second so "moved" means "ours".
        while int(time.time()) <= int(before.timestamp()):
            time.sleep(0.05)
        # A BGSAVE or AOF rewrite already running: SCHEDULE queues ours right after it.
        client.bgsave(schedule=True)
        deadline = time.monotonic() + timeout
        while True:
            info = client.info("persistence")
            if client.lastsave() > before and not info["rdb_bgsave_in_progress"]:
                break
            if time.monotonic() > deadline:
                raise BackupError(f"Redis BGSAVE did not finish within {timeout:.0f} s")
            time.sleep(0.05)
        if info.get("rdb_last_bgsave_status") != "ok":
            raise BackupError("Redis reported a failed BGSAVE; see `workshop logs redis`")
        counts = {
            "stream_jobs": int(client.xlen("stream:jobs")),
            "stream_dead": int(client.xlen("stream:jobs:dead")),
            "redis_keys": int(client.dbsize()),
        }
        dump = Path(client.config_get("dir")["dir"]) / client.config_get("dbfilename")["dbfilename"]
    finally:
        client.close()
    (out / "redis").mkdir(exist_ok=True)
    shutil.copy2(dump, out / "redis" / RDB_NAME)
    return counts


def _copy_redis_offline(cfg: NativeConfig, out: Path) -> None:
    (out / "redis").mkdir(exist_ok=True)
    rdb = cfg.redis_dir / RDB_NAME
    if rdb.exists():
        shutil.copy2(rdb, out / "redis" / RDB_NAME)
    aof = cfg.redis_dir / AOF_DIR
    if aof.is_dir():
        shutil.copytree(aof, out / "redis" / AOF_DIR, dirs_exist_ok=True)


def backup(cfg: NativeConfig, out: Path, progress: Any = _noop) -> Manifest:
    """Write a consistent snapshot of `cfg`'s data into `out`; returns its manifest."""
    started = time.monotonic()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: choose a new directory")
    out.mkdir(parents=True, exist_ok=True)
    progress("copying SQLite with the online backup API")
    version, counts = _backup_sqlite(cfg, out)
    if redis_ping(cfg.redis_port):
        progress("Redis BGSAVE")
        counts.update(_bgsave(cfg, out))
        mode = "bgsave"
    else:
        progress("copying Redis files (Redis is stopped)")
        _copy_redis_offline(cfg, out)
        mode = "offline"
    progress("hashing files")
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        files[rel] = {"sha256": _sha256(path), "bytes": path.stat().st_size}
    manifest = Manifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        source_data_dir=str(cfg.data_dir),
        db_schema_version=version,
        redis_mode=mode,
        counts=counts,
        files=files,
        seconds=round(time.monotonic() - started, 3),
    )
    (out / "manifest.json").write_text(manifest.to_json() + "\n")
    return manifest


# ---- restore --------------------------------------------------------------------------------
def verify(src: Path) -> Manifest:
    """Check every file the manifest lists against its sha256."""
    manifest = Manifest.load(src)
    if DB_NAME not in manifest.files:
        raise BackupError("the manifest lists no feedback.db")
    for rel, meta in manifest.files.items():
        path = src / rel
        if not path.is_file():
            raise BackupError(f"{rel} is listed in the manifest but missing")
        if _sha256(path) != meta["sha256"]:
            raise BackupError(f"{rel} does not match its sha256 in the manifest: corrupt copy")
    return manifest


def _replace_file(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".restoring")
    shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def restore(cfg: NativeConfig, src: Path, progress: Any = _noop) -> Manifest:
    """Put a snapshot back into `cfg.data_dir`; the stack must be stopped."""
    src = Path(src)
    if Supervisor(cfg).running() or redis_ping(cfg.redis_port):
        raise BackupError("the stack is running: run `workshop down` first, then restore")
    progress("verifying the manifest")
    manifest = verify(src)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)

    progress("restoring SQLite")
    db = cfg.data_dir / DB_NAME
    # A WAL left from the old database would be replayed onto the restored one.
    for suffix in ("-wal", "-shm", "-journal"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    _replace_file(src / DB_NAME, db)

    progress("restoring Redis")
    redis_dir = cfg.redis_dir
    redis_dir.mkdir(parents=True, exist_ok=True)
    aof = redis_dir / AOF_DIR
    shutil.rmtree(aof, ignore_errors=True)
    snap_rdb = src / "redis" / RDB_NAME
    snap_aof = src / "redis" / AOF_DIR
    if snap_aof.is_dir():  # offline backup: the AOF was the most recent state
        shutil.copytree(snap_aof, aof)
    elif snap_rdb.exists():
        # appendonly yes: Redis reads the AOF manifest, never dump.rdb. Make the snapshot the
        # AOF's base file; Redis creates the incremental file on start.
        aof.mkdir()
        shutil.copy2(snap_rdb, aof / AOF_BASE)
        (aof / AOF_MANIFEST).write_text(f"file {AOF_BASE} seq 1 type b\n")
    if snap_rdb.exists():
        _replace_file(snap_rdb, redis_dir / RDB_NAME)
    else:
        (redis_dir / RDB_NAME).unlink(missing_ok=True)
    return manifest


# ---- CLI ------------------------------------------------------------------------------------
def _run_with_progress(title: str, fn: Any) -> Any:
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task(title, total=None)
        return fn(lambda msg: bar.update(task, description=msg))


def _summary(title: str, manifest: Manifest) -> None:
    table = Table(title=title)
    table.add_column("item")
    table.add_column("value", justify="right")
    for key, value in sorted(manifest.counts.items()):
        table.add_row(key, str(value))
    table.add_row("schema version", str(manifest.db_schema_version))
    table.add_row("redis", manifest.redis_mode)
    for rel, meta in manifest.files.items():
        table.add_row(rel, f"{meta['bytes']:,} B  sha256 {meta['sha256'][:12]}…")
    console.print(table)


def backup_cmd(
    out: Annotated[
        Path | None, typer.Option("--out", help="directory to write (default data/backups/<time>)")
    ] = None,
) -> None:
    """Snapshot SQLite and Redis (safe while traffic runs) with a verified manifest."""
    cfg = NativeConfig.from_env()
    target = out or cfg.data_dir / "backups" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        manifest = _run_with_progress("backing up…", lambda p: backup(cfg, target, p))
    except (BackupError, OSError, sqlite3.Error) as exc:
        console.print(f"[bold red]error:[/] backup failed: {exc}")
        raise typer.Exit(1) from None
    _summary(f"backup written to {target} ({manifest.seconds:.1f} s)", manifest)


def restore_cmd(
    src: Annotated[Path, typer.Argument(help="a directory written by `workshop backup`")],
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="restore into this data directory")
    ] = None,
) -> None:
    """Put a backup back (the stack must be down); `workshop up` then finds it."""
    cfg = NativeConfig.from_env()
    if data_dir is not None:
        cfg = cfg.model_copy(update={"data_dir": data_dir.resolve()})
    try:
        manifest = _run_with_progress("restoring…", lambda p: restore(cfg, src, p))
    except (BackupError, OSError, sqlite3.Error) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    _summary(f"restored {src} into {cfg.data_dir}", manifest)
    console.print("next: `workshop up`")


app.command("backup")(backup_cmd)
app.command("restore")(restore_cmd)
