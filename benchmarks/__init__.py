"""keras_vae's benchmarks, run from the repository root as `python -m benchmarks.NAME`.

Each module measures one thing and appends a section to `benchmarks/RESULTS.md`
through `benchmarks.harness`, which also describes the machine and times
epochs. The package is not installed with keras_vae; it runs from a clone.
"""
