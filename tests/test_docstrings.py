"""Every public function with two or more parameters names them in its `Args:`.

The walk covers the modules of `keras_vae.__all__`, every module of the
`keras_vae.models` and `keras_vae.cli` packages, and in them every public
function, every public class (its docstring's `Args:` names the parameters of
its `__init__`) and every public method a keras_vae class defines. Overrides of
an API the package does not own (Keras's `call`, `train_step`, `get_config`,
`build`, `compute_output_shape`, `from_config`..., or any name a non-keras_vae
base class has) are documented there, and skipped here. Parameters counted
leave out `self`/`cls`, `*args` and `**kwargs`.

The `Args:` section is read the Google way (as keras-hub writes it): entries
one indentation level under the header, `name: text` or `name (type): text`,
several names allowed in one entry (`x, y: The images and labels.`); the
section ends at the first line indented no deeper than its header.
"""

import importlib
import inspect
import pkgutil
import re

import keras_vae
import keras_vae.cli

PACKAGE = keras_vae.__name__
_ENTRY = re.compile(r"^(?P<names>\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?:\([^)]*\))?\s*:")


def _public_modules():
    modules = [getattr(keras_vae, name) for name in keras_vae.__all__
               if inspect.ismodule(getattr(keras_vae, name))]
    for package in (keras_vae.models, keras_vae.cli):
        modules.append(package)
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if not info.name.rsplit(".", 1)[-1].startswith("_"):
                modules.append(importlib.import_module(info.name))
    return list({module.__name__: module for module in modules}.values())


def _ours(obj):
    module = getattr(obj, "__module__", None) or ""
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def _counted_parameters(function, bound=False):
    """The parameters a caller passes: not self/cls, *args or **kwargs."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return []
    if bound and parameters:
        parameters = parameters[1:]
    return [p.name for p in parameters
            if p.name not in ("self", "cls")
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def documented_args(docstring):
    """The names an `Args:` section of `docstring` documents (empty if none)."""
    names = set()
    header_indent = entry_indent = None  # header_indent is None outside the section
    for line in (docstring or "").splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if header_indent is not None and indent <= header_indent:
            header_indent = None  # the next section, e.g. `Returns:`
        if header_indent is None:
            if line.strip() == "Args:":
                header_indent, entry_indent = indent, None
            continue
        if entry_indent is None:
            entry_indent = indent
        match = _ENTRY.match(line.strip())
        if indent == entry_indent and match:
            names.update(name.strip().lstrip("*") for name in match.group("names").split(","))
    return names


def _external_api(cls, name):
    """Whether `name` overrides an attribute of a base class keras_vae does not own."""
    return any(hasattr(base, name) for base in cls.__mro__[1:] if not _ours(base))


def _methods(cls):
    """(qualified name, function, bound) of the public methods keras_vae classes give `cls`."""
    for klass in cls.__mro__:
        if not _ours(klass):
            continue
        for name, attribute in vars(klass).items():
            if name.startswith("_") or _external_api(cls, name):
                continue
            bound = isinstance(attribute, classmethod)
            if isinstance(attribute, (staticmethod, classmethod)):
                attribute = attribute.__func__
            if inspect.isfunction(attribute):
                yield f"{klass.__module__}.{klass.__qualname__}.{name}", attribute, bound


def _init_of(cls):
    """`cls.__init__` if keras_vae defines it (a class of ours may inherit Keras's)."""
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            return vars(klass)["__init__"] if _ours(klass) else None
    return None


def documentable():
    """(qualified name, parameters, docstring) of every public callable to check."""
    seen = set()
    found = []

    def add(name, parameters, docstring, key):
        if key not in seen:
            seen.add(key)
            found.append((name, parameters, docstring))

    for module in _public_modules():
        for name, obj in sorted(vars(module).items()):
            if name.startswith("_") or not _ours(obj):
                continue
            if inspect.isfunction(obj):
                add(f"{obj.__module__}.{obj.__qualname__}", _counted_parameters(obj),
                    inspect.getdoc(obj), obj)
            elif inspect.isclass(obj):
                init = _init_of(obj)
                if init is not None:
                    add(f"{obj.__module__}.{obj.__qualname__}", _counted_parameters(init),
                        inspect.getdoc(obj), obj)
                for qualified, method, bound in _methods(obj):
                    add(qualified, _counted_parameters(method, bound),
                        inspect.getdoc(method), method)
    return found


def test_every_public_function_with_two_or_more_parameters_names_them_in_args():
    offenders = []
    for name, parameters, docstring in documentable():
        if len(parameters) < 2:
            continue
        missing = [p for p in parameters if p not in documented_args(docstring)]
        if missing:
            offenders.append(f"{name}: Args does not name {', '.join(missing)}")
    assert not offenders, (f"{len(offenders)} public callables lack Args entries:\n"
                           + "\n".join(sorted(offenders)))


def test_the_walk_reaches_models_cli_and_methods_and_skips_keras_overrides():
    names = {name for name, _, _ in documentable()}
    expected = {
        "keras_vae.models.vae.VAE",  # a class: its __init__'s parameters
        "keras_vae.models.conditional_vae.ConditionalVAE",
        "keras_vae.cli.run_folder.RunFolder.start",  # a method, under keras_vae.cli
        "keras_vae.anomaly.AnomalyDetector.fit",  # `fit` of a class that is not Keras's
        "keras_vae.evaluation.fid",  # a function
    }
    assert expected <= names, sorted(expected - names)
    for override in ("call", "train_step", "get_config", "build", "from_config",
                     "compute_output_shape", "test_step"):
        assert f"keras_vae.models.vae.VAE.{override}" not in names


def test_documented_args_reads_google_style_entries_only():
    docstring = inspect.cleandoc("""Summary.

        Args:
            model: A model, described
                over two lines: not_a_name: here.
            x, y: The images and their labels.
            seed (int): A seed.
            **kwargs: Keras arguments.

        Returns:
            batch_size: not an argument (a later section).
        """)
    assert documented_args(docstring) == {"model", "x", "y", "seed", "kwargs"}
    assert documented_args("Summary.\n\nReturns:\n    x: The codes.") == set()
    assert documented_args(None) == set()
