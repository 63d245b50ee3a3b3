"""Scenes of a video: the segmenter (a model file -> scene boundaries), what it writes (scenes.json, CSV, EDL,
chapters, the viewer page) and the clips it cuts. Below it, :mod:`bassl.video` reads videos into shots and keyframes."""
