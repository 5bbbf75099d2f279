"""The settings module of an `rq worker` of the next release, for the end-to-end test of a
read model change: the shop's own (config.worker) with order_detail's VERSION one higher,
as a release that changes what that read model stores declares it.

    rq worker -c tests.e2e.next_release --connection-class tests.e2e.next_release.PatientRedis

RQ imports the connection class first, so this module runs before config.worker wires the
application, which reads the VERSION when it builds the read model.
"""

from __future__ import annotations

from projections import order_detail

order_detail.VERSION += 1

from config.worker import QUEUES, REDIS_URL, PatientRedis  # noqa: E402

__all__ = ["QUEUES", "REDIS_URL", "PatientRedis"]
