"""Settings module for the plain RQ worker command:

    rq worker -c config.rq_settings -w config.worker.ShopWorker --with-scheduler \
        --dequeue-strategy round_robin

With no REDIS_URL / DATABASE_URL in the environment, the private servers under
./var are started (or reused) and their URLs exported for the jobs.
"""

from config.local import export_environment, prepare_local
from config.queues import QUEUES as _QUEUES
from config.settings import Settings

_settings = export_environment(prepare_local(Settings.from_env()))

REDIS_URL = _settings.redis_url
QUEUES = list(_QUEUES)
