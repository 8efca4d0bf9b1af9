"""Running means of training metrics, a JSON-lines log of every step, and a progress bar."""
import json
import time
from collections import defaultdict

from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.runtime.distributed import is_main_process
from torch_utils_lib.toolkit.progress import progress


class MetricLogger:
    """Running means of scalar metrics, a JSON-lines log of every step, and a tqdm bar.

    Only the main process writes the log file and shows the bar.
    """

    def __init__(self, log_path=None, desc="", total=None, disable=None):
        self.sums, self.counts = defaultdict(float), defaultdict(int)
        self.log_path = log_path if is_main_process() else None
        disable = (not is_main_process()) if disable is None else disable
        self.bar = progress(total=total, desc=desc, disable=disable)
        self.start = time.time()

    def update(self, step_record=None, **metrics):
        """Add one step's metrics (floats or 0-d tensors); log them with `step_record` fields."""
        values = {k: float(v) for k, v in metrics.items()}
        for k, v in values.items():
            self.sums[k] += v
            self.counts[k] += 1
        if self.log_path:
            try:
                with open(self.log_path, "a") as f:
                    f.write(json.dumps({**(step_record or {}), **values}) + "\n")
            except OSError as e:  # a full disk or a read-only folder: one line naming the log
                raise UserError(f"{self.log_path}: cannot write ({e.strerror or e})") from None
        self.bar.update(1)
        self.bar.set_postfix({k: f"{self.sums[k] / self.counts[k]:.4f}"
                              for k in list(values)[:4]}, refresh=False)

    def means(self):
        return {k: self.sums[k] / self.counts[k] for k in self.sums}

    def close(self):
        self.bar.close()
        return self.means()
