"""dspex Python consumers: run DSPy steps dispatched on the event log."""

import os

# litellm fetches a price map over the network at import; consumers must start offline and quickly.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"
