"""Where one warm pinned review spends its time, stage by stage, in this process.

`python -m bench.stages` (PYTHONPATH at the repository): the v3.6 Argo fixture
through each step of the admission path on the example config, averaged over
many runs. The no-op stages give the scale: what every request costs anyway.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable

from harness.builders import EXAMPLES, fixture_review
from webhook import metrics
from webhook.config import load_config
from webhook.core import mutation, wirejson
from webhook.core.patch import json_patch
from webhook.core.pods import read_pod
from webhook.core.review import allowed, parse_review
from webhook.logs import BatchingHandler, JsonFormatter
from webhook.wiring import Wiring

RUNS = 5000


def timed(name: str, call: Callable[[], object], runs: int = RUNS) -> None:
    call()
    started = time.perf_counter()
    for _ in range(runs):
        call()
    print(f"{name:<34} {(time.perf_counter() - started) / runs * 1e6:8.1f} us")


def main() -> None:
    wiring = Wiring(load_config(EXAMPLES / "config.yaml"))
    admitter = wiring.admitter
    body = json.dumps(fixture_review("01-create-emissary-v3.6.json")).encode()
    document = json.loads(body)
    request = parse_review(document)
    facts = read_pod(request.object, admitter.resolver.repositories, "argo")
    decision = admitter.resolver.decide(facts)
    after = mutation.pin_pod(request.object, facts, decision, admitter.env_names)
    result = admitter.admit(request)
    logger = logging.getLogger("bench.stages")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(BatchingHandler(io.StringIO(), JsonFormatter()))
    fields = result.log_fields()

    print(f"one warm pinned review of the v3.6 fixture ({len(body)} bytes), {RUNS} runs each")
    timed("wirejson.loads of the body", lambda: wirejson.loads(body))
    timed("parse_review", lambda: parse_review(document))
    timed("read_pod (slug, targets)", lambda: read_pod(request.object, ["x/y"], "argo"))
    timed("read_pod (jetstream targets)",
          lambda: read_pod(request.object, admitter.resolver.repositories, "argo"))  # fmt: skip
    timed("resolver.decide (warm caches)", lambda: admitter.resolver.decide(facts))
    timed("mutation.pin_pod", lambda: mutation.pin_pod(request.object, facts, decision,
                                                       admitter.env_names))  # fmt: skip
    timed("json_patch (before, after)", lambda: json_patch(request.object, after))
    timed("admitter.admit (all of the above)", lambda: admitter.admit(request))
    timed("wirejson.dumps of the response", lambda: wirejson.dumps(result.response))
    timed("no-op answer (allowed + dumps)", lambda: wirejson.dumps(allowed(request.uid)))
    timed("decision log line (enqueued)", lambda: logger.info("log", extra={"fields": fields}))
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, "admission", (), None,
                               extra={"fields": fields})  # fmt: skip
    formatter = JsonFormatter()
    timed("decision log line (formatted)", lambda: formatter.format(record))

    def count() -> None:
        metrics.ADMISSIONS.labels("patched", "enrollment").inc()
        metrics.ADMISSION_SECONDS.labels("patched").observe(0.001)

    timed("metrics (counter + histogram)", count)

    def count_children() -> None:
        metrics.child(metrics.ADMISSIONS, "patched", "enrollment").inc()
        metrics.child(metrics.ADMISSION_SECONDS, "patched").observe(0.001)

    timed("metrics (remembered children)", count_children)


if __name__ == "__main__":
    main()
