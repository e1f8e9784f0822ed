"""The site ``nlu-ci serve`` listens with: rasa_nlu's ``RasaNLU`` app behind ``http_guard.Guard`` (only the
serving routes, JSON error answers)."""
from __future__ import annotations

from nlu_ci.serving import http_guard


def serving_model_of(rasa):
    """A function returning the model the server answers with now (None before the first pull)."""
    from nlu_ci.serving import swap

    def current():
        project = rasa.data_router.project_store.get(http_guard.PROJECT)
        return swap.serving_model(project) if project is not None else None

    return current


def site(settings, rasa):
    guard = http_guard.Guard(rasa.app.resource(), token=settings.rasa_nlu_token,
                             max_chars=settings.max_message_chars, serving_model=serving_model_of(rasa))
    return http_guard.site(guard)
