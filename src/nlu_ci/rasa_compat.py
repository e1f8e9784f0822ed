"""Every fix that lets rasa_nlu 0.15.1 (2019) run on today's scientific Python, in one place.

rasa_nlu's last release pins scikit-learn~=0.20, which does not build on Python 3.11, so nlu-ci
installs it with ``--no-deps`` beside current libraries (see ``scripts/install.sh``).  What breaks,
and what this module does about it:

1. ``CRFEntityExtractor.persist``/``load`` do ``from sklearn.externals import joblib``; scikit-learn
   removed that vendored copy in 0.23.  We register the standalone ``joblib`` package under that name.
2. ``SklearnIntentClassifier`` builds ``SVC(probability=True)``; scikit-learn 1.9 warns that the
   parameter goes away in 1.11.  The warning is expected noise until then (the install pins
   ``scikit-learn<1.11``), so it is filtered for that one message only.
3. ``CountVectorsFeaturizer`` passes a tokenizer together with the default ``token_pattern``;
   current scikit-learn warns about the unused pattern on every fit. Filtered for that message only.
4. ``RegexFeaturizer`` runs every pattern of the training data with the backtracking ``re.finditer`` (on
   every training text and every ``/parse`` query): ``^(a+)+$`` hangs it. Its module's ``re`` is replaced
   by a copy whose ``finditer`` is ``nlu_ci.regexes.finditer`` (RE2 for every pattern that repeats).

Not a shim but related: scikit-learn's grid search prints progress on stdout; ``engine.training``
sends stdout to stderr while training so that ``--json`` output stays parseable.

``apply()`` is idempotent and must run before rasa_nlu is imported; ``nlu_ci.engine`` and ``nlu_ci.data.dataset``
call it on import, so every code path that reaches rasa_nlu through nlu-ci gets it. A leaf (standard library
only at import time) so that the data package need not sit above the engine.
"""
from __future__ import annotations

import sys
import types
import warnings

_applied = False


def _register_sklearn_externals_joblib() -> None:
    import joblib
    import sklearn.externals as externals

    if getattr(externals, "joblib", None) is None:
        externals.joblib = joblib
    sys.modules.setdefault("sklearn.externals.joblib", joblib)


def _silence_svc_probability_deprecation() -> None:
    warnings.filterwarnings(
        "ignore",
        message=r"The `probability` parameter was deprecated",
        category=FutureWarning,
    )


def _silence_count_vectors_token_pattern() -> None:
    # CountVectorsFeaturizer passes its own tokenizer and the default token_pattern; current
    # scikit-learn warns about the unused pattern on every training run. Harmless: silence it.
    warnings.filterwarnings(
        "ignore",
        message=r"The parameter 'token_pattern' will not be used since 'tokenizer' is not None",
        category=UserWarning,
    )


def _regex_features_on_re2() -> None:
    import re

    from rasa_nlu.featurizers import regex_featurizer

    from nlu_ci import regexes

    if getattr(regex_featurizer.re, "finditer", None) is not regexes.finditer:
        safe_re = types.ModuleType("re")
        safe_re.__dict__.update(re.__dict__)
        safe_re.finditer = regexes.finditer  # escape(), compile() (lookup tables) stay the stdlib's
        regex_featurizer.re = safe_re


def apply() -> None:
    """Install every shim (safe to call many times)."""
    global _applied
    if _applied:
        return
    _register_sklearn_externals_joblib()
    _silence_svc_probability_deprecation()
    _silence_count_vectors_token_pattern()
    _regex_features_on_re2()
    _applied = True


def describe() -> types.SimpleNamespace:
    """What is installed, for `nlu-ci version` and bug reports."""
    import importlib.metadata as md

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    return types.SimpleNamespace(
        rasa_nlu=version("rasa_nlu"),
        scikit_learn=version("scikit-learn"),
        sklearn_crfsuite=version("sklearn-crfsuite"),
        numpy=version("numpy"),
        shims_applied=_applied,
    )
