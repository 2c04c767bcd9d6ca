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
# # Instructor room control
#
# Drive the room: start traffic for several attendees, schedule faults for the whole room or for one attendee, see who is sending traffic, reset.
#
# Needs the admin token.

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
    'instructor',
    short_mode=short_mode,
    attendee=attendee,
    gateway_url=gateway_url,
    admin_token=admin_token,
    telemetry_dir=telemetry_dir,
)
lab.intro()

# %%
from labs.runtime import room

lab.doctor()

# %% [markdown]
# ## Traffic for the room
#
# One attendee id per simulated user group (3 ids derived from `attendee`). The spec's timeline slows down **one** attendee only (fault scope `attendee`).

# %%
lab.run(users=users, duration=duration)
lab.live()

# %% [markdown]
# ## Who is sending traffic?
#
# From local spans' `workshop.attendee`, or the DataPrime API when `CX_API_KEY` is set.

# %%
room.attendees_sending(lab, minutes=5)

# %% [markdown]
# ## Scheduling faults by hand
#
# `room.schedule_fault(lab, kind, target, params=..., attendee=None | 'id', delay_s=..., duration_s=...)` — `attendee=None` hits the whole room. `room.reset_room(lab)` empties everything between labs.
#
# ```python
# room.schedule_fault(lab, 'latency', 'validation-service', params={'ms': 400}, delay_s=60, duration_s=300)
# ```

# %% [markdown]
# ## Room events and the room's progress
#
# Faults that act on a whole process (`slow_db`, `queue_stall`, `memory_leak`, `bad_release`) are *room events*: attendees' labs wait for you to start them. `room.start_room_event(lab, 'slow_db', duration_s=300)` starts one; `room.room_events(lab)` lists them; `room.room_progress(lab)` shows each attendee's lab step and check verdicts (also live on the web UI's Instructor page).

# %%
room.room_events(lab), room.room_progress(lab)

# %%
lab.where_to_look();

# %% [markdown]
# ## Checks

# %% [markdown]
# ### Question 1 — `who_is_sending`
#
# Which attendee ids are sending traffic? (comma-separated)
#
# Answer: text.

# %%
answer = None  # <- your answer
if reveal:
    answer = lab.solution('who_is_sending')
verdict = lab.check('who_is_sending', answer)
assert verdict or not reveal, verdict
verdict

# %% [markdown]
# ### Question 2 — `slowed_attendee`
#
# Which attendee got the fault?
#
# Answer: text.

# %%
answer = None  # <- your answer
if reveal:
    answer = lab.solution('slowed_attendee')
verdict = lab.check('slowed_attendee', answer)
assert verdict or not reveal, verdict
verdict

# %%
lab.cleanup()
