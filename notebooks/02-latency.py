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
# # Lab 02 · Latency — find the slow service
#
# Part-way through the run one service — chosen at random, hidden from you — starts adding 400 ms to every request. Find which one, and prove it with the fault's span event.
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
    '02',
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
# Part-way through the run one service — chosen at random, hidden from you — starts adding 400 ms to every request. Find which one, and prove it with the fault's span event.
#
# Fault timeline:
#
# - after 60 s (short mode: 7 s): **latency** on a service we do not tell you for 110 s
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
# Compare the server spans of the services the gateway calls: which one's own duration jumped by ~400 ms? The gateway is slow too, but only because it waits.
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
# ### Question 2 — `fault_id`
#
# Paste the `fault.id` from the `fault.injected` span event on the slow spans.
#
# Answer: text.
#
# <details><summary>Hint</summary>
#
# Open a slow trace; the event is on the slow service's server span (⚡ in `workshop traces show <trace id>`).
#
# </details>

# %%
answer = None  # <- your answer
if reveal:
    answer = lab.solution('fault_id')
verdict = lab.check('fault_id', answer)
assert verdict or not reveal, verdict
verdict

# %% [markdown]
# ## Clean up
#
# Clears the faults this lab injected.

# %%
lab.cleanup()
