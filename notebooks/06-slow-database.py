# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 06 · Slow database
#
# The storage service's SQLite database loses its indexes and a background writer holds the write lock. Find which spans dominate and what they do.
#
# Run the cells in order (Shift-Enter). Set your answers where it says `answer = None`.

# %% tags=["parameters"]
duration = None  # seconds of traffic (None: the lab's default)
users = None  # simulated users (None: the lab's default)
attendee = None  # your attendee id (None: $WORKSHOP_ATTENDEE, else your user name)
short_mode = False  # True: ~20 s of traffic (quick runs, CI)
reveal = False  # True: fill in the lab's own answers and assert they check out (CI, instructors)
gateway_url = None  # None: the local stack ($WORKSHOP_PORT_BASE, default 8010)
admin_token = None  # None: ADMIN_TOKEN, else data/admin-token
telemetry_dir = None  # None: data/telemetry (offline mode)

# %%
import pathlib
import sys

# Make the repository importable when the notebook runs from notebooks/.
for _p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]:
    if (_p / "labs" / "runtime").is_dir():
        sys.path.insert(0, str(_p))
        break

from labs.runtime import Lab  # noqa: E402
from labs.runtime.lab import as_image  # noqa: E402

lab = Lab.load(
    '06',
    short_mode=short_mode,
    attendee=attendee,
    gateway_url=gateway_url,
    admin_token=admin_token,
    telemetry_dir=telemetry_dir,
)
lab.intro()

# %% [markdown]
# ## Is everything ready?
#
# The stack must be up, and your attendee id is what your traffic carries in its baggage.

# %%
lab.doctor()

# %% [markdown]
# ## Send traffic
#
# The storage service's SQLite database loses its indexes and a background writer holds the write lock. Find which spans dominate and what they do.
#
# Fault timeline:
#
# - after 45 s (short mode: 10 s): **slow_db** on `storage-service` for 120 s
#
# The table and the plot below update live until the traffic stops.

# %%
lab.run(users=users, duration=duration)
lab.live()

# %% [markdown]
# ## Where to look
#
# Links into Coralogix for your spans in this lab's exact window, your slowest trace and your host (set `CX_TEAM_URL` to get links); locally otherwise.

# %%
lab.where_to_look();

# %% [markdown]
# ## Your slowest request, from local telemetry
#
# The collector keeps a bounded copy of every span under `data/telemetry/` (online too); `workshop traces` reads the same files.

# %%
from labs.runtime.links import NO_TEAM_HINT, trace_link
from labs.telemetry import load_spans, trace_spans, traces, waterfall_figure

spans = load_spans(lab.telemetry_dir)
mine = traces(spans, attendee=lab.attendee, limit=None)
if mine:
    slowest = max(mine, key=lambda t: t.duration_ms)
    print(f"{len(mine)} traces of yours; slowest {slowest.duration_ms:.0f} ms")
    display(as_image(waterfall_figure(trace_spans(spans, slowest.trace_id))))
    end_ns = slowest.start_ns + int(slowest.duration_ms * 1e6)
    print(trace_link(slowest.trace_id, slowest.start_ns, end_ns) or NO_TEAM_HINT)
else:
    print("no local traces (telemetry goes to Coralogix, or the collector is off)")

# %% [markdown]
# ## Questions
#
# Each answer is checked against Coralogix when `CX_API_KEY` is set, else against local telemetry.

# %% [markdown]
# ### Question 1 — `slow_service`
#
# Which service got slow?
#
# Answer: a `service.name`, e.g. `storage-service`.
#
# <details><summary>Hint</summary>
#
# Compare self time, not total time — the worker only waits for it.
#
# </details>

# %%
answer = None  # <- your answer
if reveal:
    answer = lab.solution('slow_service')
verdict = lab.check('slow_service', answer)
assert verdict or not reveal, verdict
verdict

# %% [markdown]
# ### Question 2 — `db_system`
#
# What `db.system` do the dominating client spans have?
#
# Answer: text.

# %%
answer = None  # <- your answer
if reveal:
    answer = lab.solution('db_system')
verdict = lab.check('db_system', answer)
assert verdict or not reveal, verdict
verdict

# %% [markdown]
# ### Question 3 — `db_operation`
#
# Which `db.operation.name` takes the most time?
#
# Answer: one of: `SELECT`, `INSERT`, `UPDATE`, `DELETE`.
#
# <details><summary>Hint</summary>
#
# Writes wait for the lock; reads in WAL mode do not.
#
# </details>

# %%
answer = None  # <- your answer
if reveal:
    answer = lab.solution('db_operation')
verdict = lab.check('db_operation', answer)
assert verdict or not reveal, verdict
verdict

# %% [markdown]
# ## Clean up
#
# Clears the faults this lab injected.

# %%
lab.cleanup()
