"""Optional extras: import a package that an extra of keras_vae installs, or say which."""

import importlib


class MissingExtraError(ImportError):
    """A feature needs a package of an optional extra that is not installed."""


def require(module, extra, feature):
    """Imports and returns `module`, or raises `MissingExtraError` naming the extra.

    Args:
        module: The module to import, e.g. "gradio".
        extra: The keras_vae extra that installs it, e.g. "app".
        feature: What needs it, for the message, e.g. "keras-vae explore".
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{feature} needs the {module} package ({error}). Install it with: "
            f"pip install 'keras_vae[{extra}]'") from None
