"""A room's attendees: roster → ids and logins, printable handouts, and the environment an
attendee's processes get (never a secret).

Files, under ``<data dir>/room/``:

- ``attendees.json``: id, name, email, login (no secret);
- ``secrets.json`` (mode 0600): each login's password — printed only in the handouts;
- ``handouts/<id>.html``: one A4 page per attendee;
- ``homes/<id>/``: the attendee's home (JupyterHub), with their own copy of the notebooks.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from labs.runtime import links

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"

# What an attendee's kernel, terminal or Locust UI may inherit: an allow-list, so the
# admin token and the Coralogix keys never reach a process the attendee controls.
ATTENDEE_ENV_KEEP = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "CX_REGION",
    "CX_DOMAIN",
    "CX_TEAM_URL",
    "CX_TEAM_NAME",
    "CX_APPLICATION_NAME",
)
SECRET_ENV = ("ADMIN_TOKEN", "LAB_ADMIN_TOKEN", "CX_PRIVATE_KEY", "CX_API_KEY")


class RosterError(ValueError):
    """A roster the kit cannot use (the message names the line and the fix)."""


@dataclass
class Attendee:
    id: str
    name: str
    email: str
    login: str


def room_dir(data_dir: Path) -> Path:
    return data_dir / "room"


# Latin letters NFKD does not split into a base letter and a mark.
_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "þ": "th"})


def slug(name: str) -> str:
    """An id a learner recognises as theirs: `Zoë Núñez` → `zoe-nunez` (accents dropped, not
    the letters under them), at most 24 characters of whole words; a name with no Latin
    letters → `attendee` (numbered on by the roster)."""
    plain = unicodedata.normalize("NFKD", name.strip().lower().translate(_LETTERS))
    s = re.sub(r"[^a-z0-9]+", "-", plain.encode("ascii", "ignore").decode()).strip("-")
    if len(s) > 24:  # a long name ends at its last whole word within 24 characters
        s = s[:24] if s[24] == "-" or "-" not in s[:24] else s[:24].rsplit("-", 1)[0]
    return s or "attendee"


def read_roster(path: Path) -> list[tuple[str, str]]:
    """``name[,email]`` lines; a header line ``name,email`` is optional."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RosterError(f"cannot read the roster {path}: {exc.strerror}") from None
    people = []
    for n, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip():
            continue
        name = row[0].strip()
        email = row[1].strip() if len(row) > 1 else ""
        if n == 1 and name.lower() == "name":
            continue
        if not name:
            raise RosterError(f"{path}:{n}: the name is empty (lines are `name,email`)")
        if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise RosterError(f"{path}:{n}: `{email}` is not an email address (or leave it out)")
        people.append((name, email))
    if not people:
        raise RosterError(f"{path}: no attendees (one `name,email` per line)")
    return people


def create_room(roster: Path, data_dir: Path) -> list[Attendee]:
    """Ids and logins for everyone on the roster; passwords in secrets.json (0600)."""
    people = read_roster(roster)
    rdir = room_dir(data_dir)
    rdir.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    attendees = []
    for name, email in people:
        base = slug(name)
        aid, k = base, 2
        while aid in seen:
            aid, k = f"{base}-{k}", k + 1
        seen.add(aid)
        attendees.append(Attendee(aid, name, email, aid))
    secrets_path = rdir / "secrets.json"
    fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({a.login: secrets.token_urlsafe(9) for a in attendees}, fh, indent=2)
    os.chmod(secrets_path, 0o600)  # also when the file already existed
    (rdir / "attendees.json").write_text(json.dumps([asdict(a) for a in attendees], indent=2))
    return attendees


def load_attendees(data_dir: Path) -> list[Attendee]:
    path = room_dir(data_dir) / "attendees.json"
    if not path.exists():
        raise RosterError(f"no room in {data_dir}: `workshop room create roster.csv` first")
    return [Attendee(**a) for a in json.loads(path.read_text())]


def load_secrets(data_dir: Path) -> dict[str, str]:
    return json.loads((room_dir(data_dir) / "secrets.json").read_text())


def home_dir(data_dir: Path, attendee: str) -> Path:
    return room_dir(data_dir) / "homes" / attendee


def prepare_home(data_dir: Path, attendee: str) -> Path:
    """The attendee's home with their own copy of the notebooks (kept if already there)."""
    home = home_dir(data_dir, attendee)
    target = home / "notebooks"
    target.mkdir(parents=True, exist_ok=True)
    for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
        if nb.stem != "instructor" and not (target / nb.name).exists():
            shutil.copy2(nb, target / nb.name)
    return home


def attendee_env(
    attendee: str,
    gateway_url: str,
    home: Path,
    base: Mapping[str, str] | None = None,
    telemetry_dir: Path | None = None,
) -> dict[str, str]:
    """The whole environment of an attendee's processes (allow-list, no secret)."""
    base = os.environ if base is None else base
    env = {k: base[k] for k in ATTENDEE_ENV_KEEP if base.get(k)}
    env.update(
        {
            "HOME": str(home),
            "WORKSHOP_ATTENDEE": attendee,
            "LAB_GATEWAY_URL": gateway_url,
            # Their own data dir: lab state, and no admin-token file to find there.
            "WORKSHOP_DATA_DIR": str(home / ".workshop"),
        }
    )
    if telemetry_dir is not None:  # offline checks read the room's local telemetry
        env["LAB_TELEMETRY_DIR"] = str(telemetry_dir)
    assert not any(k in env for k in SECRET_ENV)
    return env


# ---- handouts ------------------------------------------------------------------------------
_CSS = """
@page { size: A4; margin: 15mm; }
html, body { margin: 0; font: 11pt/1.45 system-ui, sans-serif; color: #111; }
.sheet { width: 180mm; height: 262mm; overflow: hidden; }
h1 { font-size: 20pt; margin: 0 0 4mm; } h2 { font-size: 13pt; margin: 6mm 0 2mm; }
table { border-collapse: collapse; width: 100%; } td { padding: 1.5mm 2mm; vertical-align: top; }
td:first-child { width: 38mm; color: #555; } code { font-size: 11pt; word-break: break-all; }
.secret { font: bold 13pt monospace; } a { color: #0b57d0; word-break: break-all; }
.small { font-size: 9pt; color: #555; }
"""


def handout_html(a: Attendee, password: str, lab_url: str, env: Mapping[str, str]) -> str:
    e = html.escape
    mine = links.attendee_query(a.id)
    explore = links.explore_link(mine, env=env)
    team = links.team_host(env)
    # Without CX_TEAM_URL / CX_TEAM_NAME there is no link to print: say how to get one.
    traces = (
        f'<a href="{e(explore)}">Explore, filtered to you</a><br>'
        if explore
        else f'<span class="small">{e(links.NO_TEAM_HINT)}</span><br>'
    )
    team_cell = f'<a href="{e(team)}">{e(team)}</a>' if team else e(links.NO_TEAM_HINT)
    host = env.get("WORKSHOP_HOST_NAME", "") or "the workshop VM"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Workshop handout — {e(a.name)}</title>
<style>{_CSS}</style></head>
<body><div class="sheet">
<h1>DataPrime workshop — {e(a.name)}</h1>
<table>
<tr><td>Lab notebooks</td><td><a href="{e(lab_url)}">{e(lab_url)}</a></td></tr>
<tr><td>Login</td><td class="secret">{e(a.login)}</td></tr>
<tr><td>Password</td><td class="secret">{e(password)}</td></tr>
<tr><td>Attendee id</td><td><code>{e(a.id)}</code> — on every span your traffic makes
(baggage <code>workshop.attendee</code>)</td></tr>
</table>
<h2>Coralogix</h2>
<table>
<tr><td>Your traces</td><td>{traces}
<code>{e(mine)}</code></td></tr>
<tr><td>Your host</td><td>Infrastructure → Infrastructure Explorer → host <b>{e(host)}</b></td></tr>
<tr><td>Team</td><td>{team_cell}</td></tr>
</table>
<h2>How it goes</h2>
<p>Open the lab URL, log in, and start with <b>00-setup-doctor</b>. Your notebooks are your
own copy: edit freely. Some labs wait for the instructor to start a <i>room event</i> — the
notebook says so. Your checks run through the workshop gateway; you never need a key.</p>
<p class="small">Keep this page to yourself: the password opens your notebooks.</p>
</div></body></html>
"""


def write_handouts(data_dir: Path, lab_url: str, env: Mapping[str, str]) -> list[Path]:
    out_dir = room_dir(data_dir) / "handouts"
    out_dir.mkdir(parents=True, exist_ok=True)
    passwords = load_secrets(data_dir)
    paths = []
    for a in load_attendees(data_dir):
        path = out_dir / f"{a.id}.html"
        path.write_text(handout_html(a, passwords[a.login], lab_url, env))
        os.chmod(path, 0o600)
        paths.append(path)
    return paths


def reset_room_files(data_dir: Path) -> bool:
    rdir = room_dir(data_dir)
    if not rdir.exists():
        return False
    shutil.rmtree(rdir)
    return True
