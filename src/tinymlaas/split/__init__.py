"""Lifecycle phase 4: cutting an int8 model between a device and the nodes behind it.

``cuts`` finds where one tensor crosses and writes the two halves as ``.tflite`` models whose
composition is the unsplit model operator for operator; ``transfer`` predicts what sending the cut
tensor over an emulated link costs; ``planner`` puts the figures of every cut side by side.
"""
