"""HTTP endpoints of this context."""

from flask_smorest import Blueprint

blueprint = Blueprint("orders", __name__, description="orders commands")
