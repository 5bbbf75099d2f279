"""HTTP endpoints of this context."""

from flask_smorest import Blueprint

blueprint = Blueprint("payments", __name__, description="payments commands")
