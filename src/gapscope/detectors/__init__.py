"""Built-in detectors. Each module registers itself with gapscope.findings.register_detector, except
paradigms.py, a part of the generalization detector."""

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
