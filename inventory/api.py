"""HTTP endpoints of this context."""

from flask_smorest import Blueprint

blueprint = Blueprint("inventory", __name__, description="inventory commands")
