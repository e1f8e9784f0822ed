"""Serving what the gate decided: ``model_server`` (the store's ACTIVE models in rasa_nlu's model-server
protocol), ``zips`` (its zip cache), ``active_model`` (which model a project serves); ``nlu-ci serve``:
``lean_server`` / ``lean_app`` / ``lockstep`` (the default lean server: aiohttp workers that switch models
together), ``rasa_server`` (rasa_nlu's own HTTP server pulling from a model URL), ``parse_rules`` (what both let
through), ``swap`` (the in-place model swap without failed requests) and ``threadsafe`` (rasa_nlu's CRF extractor
under concurrent requests)."""
