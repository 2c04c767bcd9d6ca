"""The locks (requirements/*.lock, `make lock`) agree with pyproject.toml and with each other,
and both installers use them: checked offline, from the files."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.deploy import REPO
from tests.deploy.locks import LOCKS, canonical, pinned

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
# lock → what it must satisfy (scripts/lock.sh builds each from the same sets)
WANTS = {
    "native.lock": [*PROJECT["dependencies"], *(r for e in ("load", "labs", "room", "dev")
                                                for r in EXTRAS[e])],
    "runtime.lock": PROJECT["dependencies"],
    "lab.lock": [*PROJECT["dependencies"], *EXTRAS["labs"], *EXTRAS["load"]],
}  # fmt: skip


def unsatisfied(lock: str, wants: list[str]) -> list[str]:
    pins = pinned(LOCKS / lock)
    bad = []
    for line in wants:
        req = Requirement(line)
        version = pins.get(canonical(req.name))
        if version is None:
            bad.append(f"{req.name}: not pinned")
        elif not req.specifier.contains(version, prereleases=True):
            bad.append(f"{req.name}: {version} not in {req.specifier}")
    return bad


@pytest.mark.parametrize("lock", sorted(WANTS))
def test_every_requirement_is_pinned_within_its_range(lock: str) -> None:
    assert not unsatisfied(lock, WANTS[lock]), "run `make lock`"


def test_a_range_the_lock_misses_is_caught() -> None:
    """The check above can fail: a range that excludes the pinned version is reported."""
    fastapi = pinned(LOCKS / "runtime.lock")["fastapi"]
    assert unsatisfied("runtime.lock", [f"fastapi>{fastapi}", "no-such-package>=1"]) == [
        f"fastapi: {fastapi} not in >{fastapi}",
        "no-such-package: not pinned",
    ]


@pytest.mark.parametrize("lock", sorted(WANTS))
def test_every_pin_is_hash_checked(lock: str) -> None:
    text = (LOCKS / lock).read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    missing = [b.split()[0] for b in blocks if b.strip() and "--hash=sha256:" not in b]
    assert not missing, missing


def test_the_image_and_the_checkout_get_the_same_versions() -> None:
    native = pinned(LOCKS / "native.lock")
    for lock in ("runtime.lock", "lab.lock"):
        differ = {n: (v, native.get(n)) for n, v in pinned(LOCKS / lock).items()
                  if native.get(n) != v}  # fmt: skip
        assert not differ, (lock, differ)


def test_both_installers_install_the_locks() -> None:
    bootstrap = (REPO / "scripts" / "bootstrap.sh").read_text()
    assert "pip install -q --no-deps --require-hashes -r requirements/native.lock" in bootstrap
    assert "pip check" in bootstrap  # the lock's closure is complete
    assert "--no-deps -e ." in bootstrap
    # The stamp covers the lock: a re-pinned lock reinstalls.
    assert re.search(r"stamp=.*requirements/native\.lock", bootstrap)
    dockerfile = (REPO / "stack" / "Dockerfile").read_text()
    # Every installer takes a lock as the whole closure and checks it (see bootstrap.sh).
    assert "pip install --no-deps --require-hashes -r runtime.lock && pip check" in dockerfile
    assert "pip install --no-deps --require-hashes -r lab.lock && pip check" in dockerfile
    assert "COPY requirements/runtime.lock requirements/lab.lock ./" in dockerfile


def missing_from_closure(pins: dict[str, str], wants: list[str]) -> list[str]:
    """What the packages pinned in `pins` (a lock's) require, their extras included, for the
    locks' target (CPython 3.11.2 on x86-64 Linux), and `pins` does not pin in range. Empty
    means pip may install the lock with --no-deps: nothing is left for it to resolve. The
    metadata is read from this checkout's .venv, which has the same versions (native.lock)."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.markers import default_environment

    env = {**default_environment(), "python_full_version": "3.11.2", "python_version": "3.11"}
    extras: dict[str, set[str]] = {}
    todo = [Requirement(w) for w in wants]
    bad: list[str] = []
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonical(req.name)
        version = pins.get(name)
        if version is None or not req.specifier.contains(version, prereleases=True):
            bad.append(f"{req}: {version or 'not pinned'}")
            continue
        new = set(req.extras) - extras.get(name, set())
        if name in extras and not new:
            continue
        extras.setdefault(name, set()).update(new)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            bad.append(f"{name}: not installed in .venv (run `make bootstrap`)")
            continue
        assert dist.version == version, f"{name}: .venv has {dist.version}, run `make bootstrap`"
        for line in dist.requires or []:
            dep = Requirement(line)
            wanted = [e for e in ("", *extras[name]) if dep.marker is None
                      or dep.marker.evaluate({**env, "extra": e})]  # fmt: skip
            if wanted:
                dep.marker = None
                todo.append(dep)
    return sorted(set(bad))


@pytest.mark.parametrize("lock", sorted(WANTS))
def test_each_lock_is_its_whole_closure(lock: str) -> None:
    """Both installers take a lock with --no-deps (a dependency's extra, such as lab.lock's
    `jsonschema[format-nongpl]`, would otherwise send pip to the index for the newest release
    and fail hash checking). That is safe only while every dependency is pinned, extras too."""
    assert not missing_from_closure(pinned(LOCKS / lock), WANTS[lock]), "run `make lock`"


def test_a_dependency_the_lock_lacks_is_caught() -> None:
    """The closure check can fail, and it follows extras: fqdn is in lab.lock only because
    jupyter-events asks for `jsonschema[format-nongpl]`."""
    pins = pinned(LOCKS / "lab.lock")
    del pins["fqdn"]
    assert missing_from_closure(pins, WANTS["lab.lock"]) == ["fqdn: not pinned"]
