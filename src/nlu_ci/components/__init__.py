"""rasa_nlu 0.15 components shipped by nlu-ci, usable by module path in nlu_config.yml:

- ``nlu_ci.components.LinearIntentClassifier``: linear SVM on word + char n-grams, calibrated confidences.
- ``nlu_ci.components.LeanCRFEntityExtractor``: crfsuite CRF with IO tags and lean features/settings.

Both implement ``process_batch(messages)`` (used by ``nlu_ci.engine.batch``). Their public module path is
recorded in a model's metadata, so models keep loading if the implementation modules move.
"""
import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci.components.entities import LeanCRFEntityExtractor
from nlu_ci.components.intent import LinearIntentClassifier

for _cls in (LinearIntentClassifier, LeanCRFEntityExtractor):
    _cls.__module__ = __name__

__all__ = ["LeanCRFEntityExtractor", "LinearIntentClassifier"]
