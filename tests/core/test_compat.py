"""The rasa_nlu compatibility shims (nlu_ci.rasa_compat) on today's scikit-learn."""
from __future__ import annotations

import subprocess
import sys
import warnings


def test_sklearn_externals_joblib_exists_after_apply():
    # in a fresh interpreter: without the shim the import fails, with it it works
    code = "import importlib; importlib.import_module('sklearn.externals.joblib')"
    bare = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert bare.returncode != 0 and "joblib" in bare.stderr
    shimmed = subprocess.run([sys.executable, "-c", "import nlu_ci.engine; " + code], capture_output=True, text=True)
    assert shimmed.returncode == 0, shimmed.stderr


def test_crf_entity_extractor_persists_and_loads(tmp_path):
    from rasa_nlu import config
    from rasa_nlu.model import Interpreter, Trainer
    from rasa_nlu.training_data import load_data

    import nlu_ci.engine  # noqa: F401
    from support.data import FAST_CONFIG, SAMPLE


    cfg_path = tmp_path / "c.yml"
    cfg_path.write_text(FAST_CONFIG)
    trainer = Trainer(config.load(str(cfg_path)))
    trainer.train(load_data(str(SAMPLE)))
    model_dir = trainer.persist(str(tmp_path), project_name="", fixed_model_name="m")
    parsed = Interpreter.load(model_dir).parse("a large pizza with ham please")
    assert parsed["intent"]["name"] == "order_pizza"
    assert {e["entity"] for e in parsed["entities"]} >= {"size"}


def _noisy_fits():
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.svm import SVC

    SVC(probability=True).fit([[0], [1]] * 5, [0, 1] * 5)
    CountVectorizer(tokenizer=str.split).fit(["a b"])


def test_only_the_known_noise_is_filtered():
    from nlu_ci import rasa_compat as compat

    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")
        _noisy_fits()
    assert any("token_pattern" in str(w.message) for w in raw)  # the noise exists without the shim
    with warnings.catch_warnings(record=True) as shimmed:
        warnings.simplefilter("always")
        compat._applied = False
        compat.apply()
        _noisy_fits()
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in shimmed] == ["something else"]


def test_describe_reports_versions():
    from nlu_ci import rasa_compat as compat

    d = compat.describe()
    assert d.rasa_nlu == "0.15.1" and d.shims_applied
