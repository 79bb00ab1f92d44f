"""A gateway for the worker fault tests: the capture reaches the processor, then the worker hangs."""

import os
import time
from pathlib import Path

from payments.mock_gateway import MockGateway


class HangAfterCaptureGateway(MockGateway):
    """Captures for real (the processor records it), then, the first time only, hangs.

    "First time" is marked by the file named in `FAULT_MARKER`: the hanging process writes its pid
    there, so the test knows the money was taken but our own record of it was not written, and
    which process to kill. Later captures (the redelivered task) find the marker and go on.
    """

    def capture(self, **kwargs):
        result = super().capture(**kwargs)
        marker = os.environ.get("FAULT_MARKER")
        if marker and not Path(marker).exists():
            partial = Path(f"{marker}.tmp")
            partial.write_text(str(os.getpid()))
            partial.rename(marker)  # atomic: the test never reads a half-written pid
            time.sleep(600)  # the simulated hang, inside the worker; the test SIGKILLs it long before
        return result
