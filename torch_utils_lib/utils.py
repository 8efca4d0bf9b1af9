"""Re-exports of torch_utils_lib.devices, .distributed and .metric_logger for older imports."""
from torch_utils_lib.devices import (default_device, resolve_amp,  # noqa: F401
                                     seed_everything, seed_worker)
from torch_utils_lib.distributed import (DistInfo, all_gather_object, barrier,  # noqa: F401
                                         cleanup_distributed, get_rank, get_world_size,
                                         init_distributed, is_dist, is_main_process, reduce_mean,
                                         sync_buffers, unwrap)
from torch_utils_lib.metric_logger import MetricLogger  # noqa: F401
