"""Everything that touches rasa_nlu. Importing this package applies the compatibility shims first, then makes
``RegexFeaturizer.process`` the batch path's (``regex_batch``: same results, less Python per token)."""
from nlu_ci import rasa_compat as _compat

_compat.apply()

from nlu_ci.engine import regex_batch as _regex_batch  # noqa: E402  (after the shims)

_regex_batch.install()
