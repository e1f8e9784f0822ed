"""nlu-ci: continuous training for Rasa NLU models (retrain, evaluate, gate, promote)."""
__version__ = "0.1.0"
