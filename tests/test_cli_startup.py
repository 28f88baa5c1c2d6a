"""What `import keras_vae`, `keras-vae --help` and `keras-vae --version` load.

The command line builds its parser without TensorFlow, so `--help` and
`--version` answer at once; `import keras_vae` imports the models (a saved
model's classes must be registered) but not the Gradio app, the explorer or
the multi-worker code, which are imported where they are used. Each check
runs in a fresh process, as other tests import everything into this one.
"""

import re
import subprocess
import sys

import pytest

import keras_vae
from conftest import ROOT
from conftest import run_python
from keras_vae import cli

HEAVY = ("tensorflow", "keras", "tensorflow_probability", "gradio", "numpy",
         "keras_vae.models", "keras_vae.app", "keras_vae.explorer", "keras_vae.distribute")
"""Modules the parser must not import."""


def _command_imports(*flags):
    """Runs `python -X importtime -m keras_vae FLAGS`; returns it and the modules it imported."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "keras_vae", *flags],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "keras_vae.cli" in imported  # the listing is what the command imported
    return result, imported


def test_help_imports_no_tensorflow_and_lists_every_subcommand():
    result, imported = _command_imports("--help")
    assert result.returncode == 0
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    for command in ("train", "evaluate", "anomaly", "augment", "explore", "export"):
        assert command in result.stdout


def test_version_prints_the_package_version_without_tensorflow():
    result, imported = _command_imports("--version")
    assert result.returncode == 0
    assert result.stdout == f"keras-vae {keras_vae.__version__}\n"
    assert keras_vae.__version__ == "0.1.0"
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_a_subcommand_help_imports_no_tensorflow_either():
    result, imported = _command_imports("train", "--help")
    assert result.returncode == 0 and "--likelihood" in result.stdout
    assert "tensorflow" not in imported and "keras_vae.models" not in imported


def test_import_keras_vae_leaves_the_app_explorer_and_distribution_code_out():
    result = run_python("""
        import sys
        import keras_vae
        print(sorted(name for name in ("gradio", "keras_vae.app", "keras_vae.explorer",
                                       "keras_vae.distribute", "keras_vae.mixture")
                     if name in sys.modules))
        # The saved classes are registered by the import itself.
        print("keras_vae>VAE" in __import__("keras").saving.get_custom_objects())
        print(keras_vae.mixture.ExPostSampler.__name__, "keras_vae.mixture" in sys.modules)
        from keras_vae import distribute
        print(distribute is keras_vae.distribute, keras_vae.VAE.__name__)
    """, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:4] == ["[]", "True", "ExPostSampler True", "True VAE"]


def test_dir_and_all_list_every_public_module_and_name():
    names = {"anomaly", "app", "distribute", "explorer", "mixture", "pretrained", "VAE",
             "Sampling", "HierarchicalVAE", "build_vae", "build_hierarchical_vae"}
    assert names <= set(keras_vae.__all__) <= set(dir(keras_vae))
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        keras_vae.nothing  # noqa: B018


def _choices(parser, command, flag):
    subparsers = next(action for action in parser._actions if action.dest == "command")
    sub = subparsers.choices[command]
    return tuple(next(action for action in sub._actions if flag in action.option_strings).choices)


def test_the_flags_offer_exactly_the_library_names():
    # The parser writes the names out (no TensorFlow); they must stay the library's.
    from keras_vae import anomaly
    from keras_vae import distribute
    from keras_vae import export
    from keras_vae import likelihoods
    from keras_vae import precision
    from keras_vae import priors
    from keras_vae import schedules

    parser = cli.build_parser()
    assert _choices(parser, "train", "--likelihood") == likelihoods.NAMES
    assert _choices(parser, "train", "--prior") == priors.NAMES
    assert _choices(parser, "train", "--lr-schedule") == schedules.NAMES
    assert _choices(parser, "train", "--strategy") == distribute.STRATEGIES
    assert _choices(parser, "train", "--precision") == precision.CHOICES
    assert _choices(parser, "evaluate", "--precision") == precision.CHOICES
    assert _choices(parser, "anomaly", "--score") == anomaly.SCORES
    assert _choices(parser, "export", "--format") == export.FORMATS
    assert _choices(parser, "export", "--parts") == export.PARTS
    assert _choices(parser, "export", "--quantize") == export.QUANTIZATIONS


def test_user_errors_are_the_classes_of_the_modules_imported():
    import tensorflow as tf

    from keras_vae import callbacks
    from keras_vae import distribute
    from keras_vae.cli.run_folder import RunFolderBusyError
    from keras_vae.validation import NonFiniteOutputError

    errors = cli.user_errors()
    for error in (ValueError, OSError, NotImplementedError, RunFolderBusyError,
                  NonFiniteOutputError,
                  callbacks.TrainingDivergedError, distribute.WorkerLostError,
                  tf.errors.InvalidArgumentError):
        assert error in errors
    assert KeyError not in errors and tf.errors.InternalError not in errors
    # A fresh process has imported neither callbacks nor distribute: their
    # errors cannot have been raised, and reading the list imports neither.
    result = run_python("""
        import sys
        from keras_vae import cli
        print(sorted(error.__name__ for error in cli.user_errors()))
        print("keras_vae.distribute" in sys.modules, "keras_vae.callbacks" in sys.modules)
    """, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:2] == [
        "['FolderBusyError', 'InvalidArgumentError', 'NonFiniteOutputError', "
        "'NotImplementedError', 'OSError', 'ValueError']", "False False"]


@pytest.mark.parametrize("command", ["train", "evaluate", "anomaly", "augment", "explore",
                                     "export"])
def test_help_says_each_default_once(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere
    options = re.split(r" (?=--[a-z])", text)
    twice = [option[:80] for option in options if option.count("default") > 1]
    assert not twice, twice
