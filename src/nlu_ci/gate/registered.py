"""The gate checks that are modules of their own (each declares its policy key: see ``gate/min_intent_f1.py``).
A new check is one module and one line here; ``gate.policy`` parses its key, ``gate.decide`` runs it, in this
order, before the built-in comparison checks."""
from nlu_ci.gate import min_intent_f1

CHECKS = [min_intent_f1]
