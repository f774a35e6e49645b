"""CoSpeech model: motion format, audio features, flow-matching network,
numpy sampler with PyTorch / ONNX Runtime backends, training and evaluation.
Generation needs only numpy/scipy/librosa + onnxruntime (or torch); training
needs torch.  Never imports bpy."""
