"""What trains and measures the model, apart from what ships: training
(:mod:`.train`, :mod:`.windows`, :mod:`.dataset`, :mod:`.facegood`),
evaluation (:mod:`.evaluate`, :mod:`.lipsync_eval`), benchmarks
(:mod:`.benchmark`) and the ONNX export (:mod:`.export_onnx`).  Left out of
the extension zips (``tools/build_extension.py``); never imported by the
shipped model code or by Blender."""
