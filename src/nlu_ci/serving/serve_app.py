"""The site ``nlu-ci serve`` listens with: rasa_nlu's ``RasaNLU`` app behind ``http_guard.Guard`` (only the
serving routes, JSON error answers), ``GET /metrics`` (``parse_metrics``), and each parse answer counted (and, with
``--query-log``, written to the query log) on its way out of rasa_nlu's ``DataRouter.parse``."""
from __future__ import annotations

from nlu_ci.serving import http_guard

OPEN_ROUTES = (b"/ready", b"/metrics")  # probes and scrapes need no token (the NetworkPolicy bounds who connects)


def serving_model_of(rasa):
    """A function returning the model the server answers with now (None before the first pull)."""
    from nlu_ci.serving import swap

    def current():
        project = rasa.data_router.project_store.get(http_guard.PROJECT)
        return swap.serving_model(project) if project is not None else None

    return current


def observe_answers(router, *observers) -> None:
    """Each answer of ``router.parse`` (run in rasa_nlu's request threads) is handed to every observer."""
    original = router.parse

    def parse(data):
        response = original(data)
        for observe in observers:
            observe(response)
        return response

    router.parse = parse


def site(settings, rasa, query_log=None):
    metrics = rasa.nlu_ci_metrics
    current = serving_model_of(rasa)
    observe_answers(rasa.data_router, metrics.answer, *([query_log.write] if query_log is not None else []))

    def render_metrics(request):
        metrics.served_name(current())  # the stock swap mode does not report its swaps
        return metrics.render(request)

    guard = http_guard.Guard(rasa.app.resource(), token=settings.rasa_nlu_token, open_routes=OPEN_ROUTES,
                             max_chars=settings.max_message_chars, serving_model=current,
                             extra={b"/metrics": render_metrics}, on_parse=metrics.request)
    return http_guard.site(guard)
