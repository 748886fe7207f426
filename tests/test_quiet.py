import os
import subprocess
import sys

from tinymlaas.quiet import native_chatter_filtered


def test_known_native_chatter_is_dropped_and_everything_else_kept(capfd):
    with native_chatter_filtered():
        os.write(
            2,
            b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8, "
            b"output_inference_type: INT8\n",
        )
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"error: the model has no subgraph\n")
    assert capfd.readouterr().err == "error: the model has no subgraph\n"


def test_the_command_line_imports_tensorflow_without_start_up_lines():
    code = "import tinymlaas.cli, tensorflow; print(tensorflow.__version__)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert proc.stdout.strip() and proc.stderr == ""
