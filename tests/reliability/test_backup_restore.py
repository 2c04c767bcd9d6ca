"""`workshop backup` under load, then `workshop restore` into a fresh data directory: a second
stack started on it finds every result and feedback row that existed at backup time."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from stack.client import Gateway
from stack.common.redis import GROUP, JOB_PREFIX, STREAM
from stack.common.settings import ServiceName
from stack.native import launcher
from tests.conftest import REPO
from tests.helpers import eventually, questions, stored_job_ids, submit_many
from tests.reliability import SYNTHETIC, steady_load
from workshop.backup import BackupError, Manifest, backup, restore


def _snapshot_ids(db: Path) -> tuple[set[str], set[int]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        jobs = {r[0] for r in conn.execute("SELECT job_id FROM jobs")}
        feedback = {r[0] for r in conn.execute("SELECT id FROM feedback")}
        return jobs, feedback
    finally:
        conn.close()


def test_backup_under_load_restores_into_a_fresh_stack(stack, tmp_path: Path) -> None:
    base = stack.url(ServiceName.GATEWAY)
    gw = stack.gateway()
    tag = uuid.uuid4().hex[:6]
    seed = asyncio.run(
        submit_many(
            base,
            [f"{q} (backup {tag} {i})" for i, q in enumerate(questions()[:40])],
            headers=SYNTHETIC,
        )
    )
    seed_ids = [b["id"] for s, b in seed if s == 202]
    assert len(seed_ids) == 40
    eventually(lambda: all(i in stored_job_ids(stack.cfg) for i in seed_ids), 60, 0.5)
    rated = [gw.rate(i, 1 + n % 5, f"backup {n}")["id"] for n, i in enumerate(seed_ids[:20])]

    # Back up in the middle of 8 s of traffic.
    out = tmp_path / "snapshot"
    box: dict[str, Manifest] = {}

    def take() -> None:
        time.sleep(3)
        box["manifest"] = backup(stack.cfg, out)

    taker = threading.Thread(target=take)
    taker.start()
    load = asyncio.run(steady_load(base, rate=20, duration=8, tag=f"backup-load {tag}"))
    taker.join(60)
    manifest = box["manifest"]
    snap_jobs, snap_feedback = _snapshot_ids(out / "feedback.db")
    print(
        f"backup: {manifest.seconds:.2f} s, counts={manifest.counts}, "
        f"files={ {k: v['bytes'] for k, v in manifest.files.items()} }, "
        f"load 202={len(load.accepted_ids)}"
    )
    assert manifest.redis_mode == "bgsave"
    assert manifest.db_schema_version >= 2
    assert {"feedback.db", "redis/dump.rdb"} <= manifest.files.keys()
    assert manifest.counts["jobs"] == len(snap_jobs)
    assert manifest.counts["feedback"] == len(snap_feedback)
    assert set(seed_ids) <= snap_jobs and set(rated) <= snap_feedback
    assert (out / "manifest.json").exists()

    # Restore refuses while the stack runs, and refuses a corrupted copy.
    with pytest.raises(BackupError, match="workshop down"):
        restore(stack.cfg, out)
    runner = CliRunner()
    env = {
        **stack.cfg.to_env(),
        "COLUMNS": "200",
    }
    from workshop.cli import app

    cli = runner.invoke(app, ["restore", str(out)], env=env)
    assert cli.exit_code == 1 and "workshop down" in cli.output, cli.output

    # The fresh stack: its own data directory and ports, no collector, no nginx.
    port_base = int(os.environ.get("TEST_PORT_BASE", "18000")) + 500
    cfg2 = stack.cfg.model_copy(
        update={
            "data_dir": REPO / "data" / f"test-restore-{port_base}",
            "port_base": port_base + 10,
            "redis_port": port_base + 379,
        }
    )
    launcher.down(cfg2)
    shutil.rmtree(cfg2.data_dir, ignore_errors=True)
    bad = tmp_path / "tampered"
    shutil.copytree(out, bad)
    with (bad / "feedback.db").open("r+b") as fh:
        fh.seek(200)
        fh.write(b"\xff\xfe")
    with pytest.raises(BackupError, match="sha256"):
        restore(cfg2, bad)
    assert not (cfg2.data_dir / "feedback.db").exists()

    started = time.monotonic()
    restore(cfg2, out)
    restored_in = time.monotonic() - started
    try:
        launcher.up(cfg2, collector=False, nginx=False, timeout=90)
        got_jobs = set(stored_job_ids(cfg2))
        conn = sqlite3.connect(f"file:{cfg2.data_dir / 'feedback.db'}?mode=ro", uri=True)
        got_feedback = {r[0] for r in conn.execute("SELECT id FROM feedback")}
        conn.close()
        assert snap_jobs <= got_jobs
        assert snap_feedback <= got_feedback
        # Through the restored API: results, their ratings, and Redis state (job statuses,
        # the stream and its consumer group) came back.
        gw2 = Gateway.for_native(cfg2)
        for job_id in seed_ids[:10]:
            assert gw2.get(job_id)["status"] == "done"
        history = gw2.history(page_size=100)
        assert history["total"] >= len(snap_jobs)
        client = redis.Redis.from_url(cfg2.redis_url, decode_responses=True)
        try:
            assert client.xlen(STREAM) >= len(seed_ids)
            assert GROUP in {g["name"] for g in client.xinfo_groups(STREAM)}
            assert client.exists(f"{JOB_PREFIX}{seed_ids[0]}")
            assert (cfg2.redis_dir / "appendonlydir").is_dir()
        finally:
            client.close()
        # The restored stack keeps working.
        new = gw2.ask("errors from checkout by status code in the last hour")
        assert gw2.wait(new["id"], timeout=30)["status"] == "done"
        print(
            f"restore: {restored_in:.2f} s; jobs {len(snap_jobs)}/{len(snap_jobs)}, "
            f"feedback {len(snap_feedback)}/{len(snap_feedback)} found in the fresh stack"
        )
    finally:
        launcher.down(cfg2)
    shutil.rmtree(cfg2.data_dir, ignore_errors=True)
