"""CoSpeech model: motion format, audio features, flow-matching network,
sampler, training and evaluation.  Pure Python/PyTorch: never imports bpy."""
