"""The API's entry point: `gunicorn wsgi:app`.

Without DATABASE_URL, REDIS_URL, SECRET_KEY, ADMIN_TOKEN, STRIPE_API_KEY and
STRIPE_WEBHOOK_SECRET it refuses to start, naming the missing ones (SHOP_ENV=development
fills them in locally instead, and points the local Stripe's webhook at this API).
READ_DATABASE_URL, optional, names the streaming replicas its queries read from.
"""

from config.bootstrap import bootstrap
from config.environment import settings_for
from config.flask_app import create_app

app = create_app(bootstrap(settings_for("gunicorn wsgi:app", serves_api=True)))
