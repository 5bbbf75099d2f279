"""The API's entry point: `gunicorn wsgi:app`.

Without DATABASE_URL, REDIS_URL, SECRET_KEY and ADMIN_TOKEN it refuses to start, naming
the missing ones (SHOP_ENV=development fills them in locally instead).
"""

from config.bootstrap import bootstrap
from config.environment import settings_for
from config.flask_app import create_app

app = create_app(bootstrap(settings_for("gunicorn wsgi:app")))
