"""Plugins own their options and their pull-request behaviour: each output channel and each registry backend
declares its ``OPTIONS`` in its own module (without importing ``settings``), each channel says whether it runs
in ``nlu-ci check`` (``PULL_REQUEST``), ``settings`` gathers the options from the two registration lists, and
``check`` takes no flag of a channel that stays silent there."""
from __future__ import annotations

from pathlib import Path

from test_structure import imports_of

from nlu_ci import settings
from nlu_ci.commands import check, run
from nlu_ci.option import KINDS, Option
from nlu_ci.outputs import channels
from nlu_ci.registry import backends


def test_every_plugin_declares_its_options_and_does_not_import_settings():
    for module in [*channels.CHANNELS, *backends.BACKENDS]:
        assert all(isinstance(o, Option) and o.kind in KINDS for o in module.OPTIONS), module.__name__
        assert callable(module.from_settings), module.__name__
        assert "nlu_ci.settings" not in imports_of(module.__name__), module.__name__
    assert all(isinstance(m.PULL_REQUEST, bool) for m in channels.CHANNELS)
    names = [b.NAME for b in backends.BACKENDS]
    assert len(names) == len(set(names)) and "auto" not in names


def test_one_declaration_per_option_gathered_from_the_plugins():
    names = [o.name for o in settings.OPTIONS]
    envs = [e for o in settings.OPTIONS for e in (o.env, o.secret_file_env) if e]
    assert len(names) == len(set(names)) and len(envs) == len(set(envs))
    for module in [*channels.CHANNELS, *backends.BACKENDS, backends]:
        for option in module.OPTIONS:
            assert settings.BY_NAME[option.name] is option, option.name
    source = Path(settings.__file__).read_text(encoding="utf-8")
    owned = [o.name for m in [*channels.CHANNELS, *backends.BACKENDS] for o in m.OPTIONS]
    assert not [n for n in owned if f'Option("{n}"' in source]  # declared in the plugin, not again in settings


def test_check_takes_no_flag_of_a_channel_that_is_silent_in_pull_requests():
    silent = [o.name for m in channels.CHANNELS if not m.PULL_REQUEST for o in m.OPTIONS]
    assert silent and not set(silent) & set(check.SETTINGS)
    assert set(silent) <= set(run.SETTINGS)
    kept = [o.name for m in channels.CHANNELS if m.PULL_REQUEST for o in m.OPTIONS]
    assert set(kept) <= set(check.SETTINGS)
