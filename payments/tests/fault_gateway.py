"""A gateway for the fault test: the capture reaches the processor, then the worker hangs."""

import os
import time
from pathlib import Path

from payments.mock_gateway import MockGateway


class HangAfterCaptureGateway(MockGateway):
    """Captures for real, then (once, marked by the file `FAULT_MARKER`) hangs so the test can kill the worker
    between the processor's capture and our record of it."""

    def capture(self, **kwargs):
        result = super().capture(**kwargs)
        marker = os.environ.get("FAULT_MARKER")
        if marker and not Path(marker).exists():
            Path(marker).write_text("captured")
            time.sleep(600)  # the simulated hang inside the worker; the test SIGKILLs it long before
        return result
