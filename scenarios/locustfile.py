"""DataPrime Assistant load scenarios — the Locust entry point.

    locust -f scenarios/locustfile.py --config scenarios/conf/smoke.conf
    locust -f scenarios/locustfile.py --config scenarios/conf/baseline.conf AnalystUser

User classes (pick any on the command line; all three by default): AnalystUser, ExplorerUser,
ApiClientUser. The load shape comes from `--shape` (see `shapes.py`), SLOs from `--slo-*`
(see `slo.py`), faults from `--fault-timeline` (see `faults.py`). See scenarios/README.md.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from locust import events
from locust.runners import WorkerRunner

from scenarios import faults, slo  # noqa: F401  (slo registers its options and the gate)
from scenarios.shapes import ScenarioShape  # noqa: F401  (the only shape Locust sees here)
from scenarios.users import AnalystUser, ApiClientUser, ExplorerUser  # noqa: F401

faults.install(events)
log = logging.getLogger("workshop.locustfile")
_sent = {"requests": 0}


@events.init.add_listener
def _worker_hygiene(environment: Any, **_: Any) -> None:
    """Reports are the master's job. Locust's `--processes` children keep `--json-file`, so
    without this each worker overwrites the master's JSON report with its own empty one when
    it quits (Locust 2.47 clears csv/html for them, not json)."""
    if isinstance(environment.runner, WorkerRunner) and environment.parsed_options:
        environment.parsed_options.json_file = None
        environment.parsed_options.html_file = None
        environment.parsed_options.csv_prefix = None


@events.init.add_listener
def _interrupt_at_a_safe_point(environment: Any, **_: Any) -> None:
    """Ctrl-C through a gevent signal watcher: Locust's main greenlet gets the KeyboardInterrupt
    while it waits (in `main_greenlet.join()`, where Locust catches it and shuts down). Python's
    default handler raises it in whatever greenlet runs at that instant, possibly inside a lock
    (logging, a connection pool) that the shutdown then waits on for ever. Once, on a loaded
    machine, a run interrupted this way had not quit 30 s later."""
    import signal

    import gevent

    main = gevent.get_hub().parent
    with contextlib.suppress(ValueError):  # not the main thread: keep the default
        gevent.signal_handler(signal.SIGINT, main.throw, KeyboardInterrupt)


@events.request.add_listener
def _count(**_: Any) -> None:
    _sent["requests"] += 1


@events.quitting.add_listener
def _worker_summary(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        index = getattr(environment.runner, "worker_index", "?")
        log.info("worker %s sent %d requests", index, _sent["requests"])


@events.init_command_line_parser.add_listener
def _final_stats_option(parser: Any) -> None:
    parser.add_argument(
        "--final-stats-csv",
        default=None,
        include_in_web_ui=False,
        help="write the stats table here once every user has stopped (Locust's CSV form)",
    )


@events.quitting.add_listener
def _final_stats(environment: Any, **_: Any) -> None:
    """The stats table once every user has stopped, in Locust's own CSV form. Its
    `--csv` stats file is rewritten once a second and not at quit, so it can miss the last
    second's requests that `--json-file` (written after this) counts; `workshop load`'s final
    table reads this file and agrees with the run's totals."""
    path = getattr(environment.parsed_options, "final_stats_csv", None)
    if isinstance(environment.runner, WorkerRunner) or not path:
        return
    import csv

    from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

    try:
        with open(path, "w", newline="") as fh:
            StatsCSV(environment, PERCENTILES_TO_REPORT).requests_csv(csv.writer(fh))
    except OSError as exc:
        log.error("could not write the final stats: %s", exc)
