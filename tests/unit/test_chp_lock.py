"""The room's proxy (configurable-http-proxy) is installed from the kit's own npm lock, with
`npm ci`, so a later npm release cannot change what a room runs. An npm that stands in for the
real one (a script on PATH) shows what the installer asks of it and how it reports a failure."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from labs.runtime import hub

PACKAGE = json.loads((hub.CHP_LOCK / "package.json").read_text())
LOCK = json.loads((hub.CHP_LOCK / hub.LOCKFILE).read_text())


def test_the_lock_pins_the_proxy_and_hashes_every_package() -> None:
    pinned = PACKAGE["dependencies"]["configurable-http-proxy"]
    assert pinned[0].isdigit(), "an exact version, not a range"
    packages = {k: v for k, v in LOCK["packages"].items() if k}
    assert packages["node_modules/configurable-http-proxy"]["version"] == pinned
    assert LOCK["packages"][""]["dependencies"] == PACKAGE["dependencies"]
    # npm ci checks every tarball against its integrity, whichever registry serves it.
    unhashed = [k for k, v in packages.items() if not v.get("integrity", "").startswith("sha512-")]
    assert not unhashed, unhashed


def _fake_npm(tmp_path: Path, script: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    npm = bindir / "npm"
    npm.write_text("#!/bin/sh\n" + script)
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    return bindir


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "chp"
    monkeypatch.setattr(hub, "CHP_CACHE", cache)
    return cache


def test_a_cache_from_another_lock_is_installed_again_with_npm_ci(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What an install before the lock left: the proxy from a range, under its own lockfile.
    old = cache / "node_modules" / ".bin" / "configurable-http-proxy"
    old.parent.mkdir(parents=True)
    old.write_text("")
    (cache / hub.LOCKFILE).write_text('{"lockfileVersion": 3, "packages": {}}')
    calls = tmp_path / "calls"
    bindir = _fake_npm(
        tmp_path,
        f'echo "$@" >> {calls}\n'
        "for prefix; do :; done\n"  # the last argument: --prefix DIR
        'test -f "$prefix/package-lock.json" || exit 9\n'
        ': > "$prefix/node_modules/.bin/configurable-http-proxy"\n',
    )
    monkeypatch.setenv("PATH", str(bindir))
    assert hub.chp_binary() is None  # the old install does not count
    assert hub.install_chp() == old
    assert calls.read_text().split()[:1] == ["ci"]
    assert (cache / hub.LOCKFILE).read_bytes() == (hub.CHP_LOCK / hub.LOCKFILE).read_bytes()
    assert hub.chp_binary() == old
    assert hub.install_chp() == old and len(calls.read_text().splitlines()) == 1


def test_a_failed_install_says_why_and_is_tried_again(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = _fake_npm(tmp_path, "echo 'npm ERR! code ENOTFOUND registry.npmjs.org' >&2\nexit 1\n")
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(RuntimeError) as err:
        hub.install_chp()
    assert "ENOTFOUND" in str(err.value) and str(cache) in str(err.value)
    assert not (cache / hub.LOCKFILE).exists()  # not taken for an install next time


def test_an_npm_that_hangs_is_stopped_and_reported(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "NPM_TIMEOUT_S", 0.5)
    monkeypatch.setenv("PATH", str(_fake_npm(tmp_path, "while :; do :; done\n")))
    with pytest.raises(RuntimeError, match=r"took over 0.5 s \(is the registry reachable\?\)"):
        hub.install_chp()
    assert not (cache / hub.LOCKFILE).exists()


def test_without_npm_the_error_names_what_to_install(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="install Node.js and npm"):
        hub.install_chp()
