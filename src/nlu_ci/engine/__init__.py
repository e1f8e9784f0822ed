"""Everything that touches rasa_nlu. Importing this package applies the compatibility shims first."""
from nlu_ci.engine import compat as _compat

_compat.apply()
