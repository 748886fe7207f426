"""The ``tinymlaas`` command line: thin commands that parse, call a service, and render."""

import os

from tinymlaas import quiet

# TensorFlow's C++ start-up chatter (oneDNN, absl) would bury the terminal output, here and in the job
# workers that inherit this environment; errors still come through. Set before any module of the
# command line imports TensorFlow, which reads it once, at its own import; what the variable does not
# reach, ``quiet`` filters out of that import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
quiet.install()
