"""The room's JupyterHub, natively: two attendees log in with their own password, get their
own home and notebooks, and no process they control holds a secret (kernel environ scan)."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from labs.runtime import hub, roster

pytestmark = pytest.mark.stack
SECRETS = {
    "ADMIN_TOKEN": "admin-SECRET-0123456789",
    "CX_API_KEY": "cxup_SECRET_QUERY_KEY_0123",
    "CX_PRIVATE_KEY": "cxtp_SECRET_SEND_KEY_0123",
}


def _have_hub() -> bool:
    bindir = Path(sys.executable).parent
    return (bindir / "jupyterhub").exists() and hub.chp_binary() is not None


@pytest.fixture(scope="module")
def stack():
    """A room's stack: attendees may start faults scoped to themselves (ATTENDEE_FAULTS),
    which is how an attendee's lab without the admin token injects its own fault."""
    if not _have_hub():
        pytest.skip("JupyterHub (pip extra `room`) or configurable-http-proxy not installed")
    import os

    from stack.native import launcher
    from tests.conftest import REPO, StackHandle, collector_built, test_config

    base = os.environ.get("TEST_PORT_BASE", "18000")
    cfg = test_config(REPO / "data" / f"test-room-stack-{base}", offset=500)
    cfg = cfg.with_env({"ATTENDEE_FAULTS": "true"})
    launcher.down(cfg)
    shutil.rmtree(cfg.data_dir, ignore_errors=True)
    result = launcher.up(cfg, collector=collector_built(), nginx=False, timeout=90)
    try:
        yield StackHandle(cfg, result.collector, False)
    finally:
        launcher.down(cfg)


@pytest.fixture()
def room_hub(stack, tmp_path, monkeypatch):
    for k, v in SECRETS.items():  # the instructor's shell holds every secret
        monkeypatch.setenv(k, v)
    cfg = stack.cfg.model_copy(update={"data_dir": tmp_path / "data"})
    (tmp_path / "roster.csv").write_text("name,email\nAnn Lee,ann@example.invalid\nBob\n")
    attendees = roster.create_room(tmp_path / "roster.csv", cfg.data_dir)
    port = int(stack.cfg.port_base) + 90
    proc = hub.start(cfg, port=port, telemetry_dir=stack.telemetry_dir)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/hub/health", timeout=2).ok:
                break
        except requests.RequestException:
            time.sleep(0.5)
    else:
        proc.terminate()
        log = (roster.room_dir(cfg.data_dir) / "hub" / "jupyterhub.log").read_text()
        pytest.fail("the hub did not come up:\n" + log[-3000:])
    yield url, cfg, attendees, roster.load_secrets(cfg.data_dir)
    proc.terminate()
    try:
        proc.wait(30)
    except Exception:
        proc.kill()
    for p in psutil.process_iter(["environ"]):  # single-user servers left behind
        try:
            if (p.info["environ"] or {}).get("WORKSHOP_DATA_DIR", "").startswith(str(tmp_path)):
                p.kill()
        except psutil.Error:
            pass
    # tmp_path (logs included) is left for pytest to rotate


def _login(url: str, user: str, password: str) -> requests.Session:
    s = requests.Session()
    page = s.get(url + "/hub/login", timeout=10).text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page)
    form = {"username": user, "password": password}
    if xsrf:
        form["_xsrf"] = xsrf.group(1)
    r = s.post(url + "/hub/login?next=", data=form, timeout=30, allow_redirects=False)
    assert r.status_code in (302, 303), (r.status_code, r.text[:300])
    return s


def _start_kernel(url: str, s: requests.Session, user: str) -> str:
    """Spawn the attendee's server through the hub, start a kernel; its id."""
    s.get(url + f"/hub/spawn/{user}", timeout=60)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        # The lab page goes through the hub's OAuth once the server is up (cookie set).
        r = s.get(url + f"/user/{user}/lab", timeout=30)
        if r.ok and f"/user/{user}/lab" in r.url:
            break
        time.sleep(1)
    else:
        pytest.fail(f"{user}'s server did not start")
    xsrf = s.cookies.get("_xsrf", path=f"/user/{user}/") or s.cookies.get("_xsrf")
    r = s.post(
        url + f"/user/{user}/api/kernels",
        json={"name": "python3"},
        headers={"X-XSRFToken": xsrf or ""},
        timeout=60,
    )
    assert r.status_code == 201, (r.status_code, r.text[:300])
    return r.json()["id"]


def _processes_of(user: str, data_dir: Path) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["environ", "cmdline"]):
        try:
            env = p.info["environ"] or {}
        except psutil.Error:
            continue
        if env.get("WORKSHOP_ATTENDEE") == user and env.get("HOME", "").startswith(str(data_dir)):
            out.append(p)
    return out


def test_two_attendees_each_get_their_own_home_and_no_secret(room_hub):
    url, cfg, attendees, passwords = room_hub
    with pytest.raises(AssertionError):  # a wrong password does not log in
        _login(url, attendees[0].login, "not-the-password")
    for a in attendees:
        s = _login(url, a.login, passwords[a.login])
        _start_kernel(url, s, a.login)
        home = roster.home_dir(cfg.data_dir, a.id)
        assert (home / "notebooks" / "02-latency.ipynb").exists()
        # Their own copy: listing their notebooks goes through their own server.
        listing = s.get(url + f"/user/{a.login}/api/contents/notebooks", timeout=10).json()
        assert "02-latency.ipynb" in {c["name"] for c in listing["content"]}
    for a in attendees:
        deadline = time.monotonic() + 30
        procs: list[psutil.Process] = []
        while time.monotonic() < deadline:
            procs = _processes_of(a.login, cfg.data_dir)
            if any("ipykernel" in " ".join(p.cmdline()) for p in procs):
                break
            time.sleep(0.5)
        kernels = [p for p in procs if "ipykernel" in " ".join(p.cmdline())]
        assert kernels, f"no kernel process for {a.login}"
        for p in procs:  # the single-user server and the kernel
            environ = p.environ()
            raw = json.dumps(environ)
            for name, value in SECRETS.items():
                assert name not in environ and value not in raw, (a.login, p.pid, name)
            assert environ["WORKSHOP_ATTENDEE"] == a.login
            assert environ["HOME"] == str(roster.home_dir(cfg.data_dir, a.id))
        rss = {
            ("kernel" if "ipykernel" in " ".join(p.cmdline()) else "server"): p.memory_info().rss
            // 2**20
            for p in procs
        }
        print(f"\nRSS MiB for {a.login}: {rss}")  # the figures docs/deploy-vm.md sizes from
    # Each home is its own: the two attendees' notebooks are different files.
    homes = {roster.home_dir(cfg.data_dir, a.id) for a in attendees}
    assert len(homes) == 2


LAB_02 = """
import json
from labs.runtime import Lab
lab = Lab.load("02", short_mode=True, seed={seed})
lab.run()
lab.wait()
mine = {{"target": lab.solution("slow_service"), "fault_id": lab.solution("fault_id"),
         "scope": lab.state.faults[0].scope_value, "admin": lab._admin_token is not None}}
mine["checks"] = {{"slow_service": lab.check("slow_service", mine["target"]).correct,
                   "fault_id": lab.check("fault_id", mine["fault_id"]).correct}}
print("RESULT " + json.dumps(mine))
"""

CROSS = """
print("CROSS " + json.dumps({{
    "slow_service": lab.check("slow_service", {target!r}).correct,
    "fault_id": lab.check("fault_id", {fault_id!r}).correct,
}}))
"""


def _run(client, code: str, marker: str, timeout: float = 240) -> dict:
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    reply = client.execute_interactive(code, output_hook=hook, timeout=timeout)
    text = "".join(out)
    assert reply["content"]["status"] == "ok", text[-3000:]
    line = next(ln for ln in text.splitlines() if ln.startswith(marker + " "))
    return json.loads(line.removeprefix(marker + " "))


def test_two_attendees_run_lab_02_in_their_own_kernels_and_see_only_their_own(room_hub, stack):
    if not stack.collector:
        pytest.skip("needs the built collector (local telemetry)")
    import random
    from concurrent.futures import ThreadPoolExecutor

    from jupyter_client import BlockingKernelClient

    from labs.runtime import load_spec

    url, cfg, attendees, passwords = room_hub
    candidates = load_spec("02").faults[0].candidates
    seeds = [
        1,
        next(
            s
            for s in range(2, 99)
            if random.Random(s).choice(candidates) != random.Random(1).choice(candidates)
        ),
    ]
    clients = []
    for a in attendees:
        s = _login(url, a.login, passwords[a.login])
        kid = _start_kernel(url, s, a.login)
        conn = roster.home_dir(cfg.data_dir, a.id) / ".local/share/jupyter/runtime"
        client = BlockingKernelClient(connection_file=str(conn / f"kernel-{kid}.json"))
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        clients.append(client)
    with ThreadPoolExecutor(2) as pool:  # both labs at once, on one stack
        results = list(
            pool.map(
                lambda cs: _run(cs[0], LAB_02.format(seed=cs[1]), "RESULT"),
                zip(clients, seeds, strict=True),
            )
        )
    ann, bob = results
    for a, r in zip(attendees, results, strict=True):
        assert r["admin"] is False  # no admin token in the attendee's kernel
        assert r["scope"] == a.login  # the lab's fault touched only its attendee
        assert r["checks"] == {"slow_service": True, "fault_id": True}
    assert ann["target"] != bob["target"] and ann["fault_id"] != bob["fault_id"]
    for client, other in ((clients[0], bob), (clients[1], ann)):
        crossed = _run(client, CROSS.format(**other), "CROSS", timeout=120)
        assert crossed == {"slow_service": False, "fault_id": False}
    for client in clients:
        client.stop_channels()
