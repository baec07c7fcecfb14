"""The dashboard's pages, one module each; ui/dashboard.py puts them in its navigation."""

from ui.views.account import account, sidebar
from ui.views.fleet import fleet
from ui.views.jobs import history, running
from ui.views.keys import keys
from ui.views.ledger import ledger
from ui.views.models import models
from ui.views.predict import predict, show_result

__all__ = ["account", "fleet", "history", "keys", "ledger", "models", "predict", "running", "show_result",
           "sidebar"]
