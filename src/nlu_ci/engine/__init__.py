"""Everything that touches rasa_nlu. Importing this package applies the compatibility shims first."""
from nlu_ci import rasa_compat as _compat

_compat.apply()
