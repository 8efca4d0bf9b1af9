"""Data loaders for detection: shuffling, torchrun sharding, aspect-ratio grouped batches."""
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from torch_utils_lib.data.coco_utils import collate_fn
from torch_utils_lib.runtime.devices import seed_worker
from torch_utils_lib.runtime.distributed import get_world_size


class GroupedBatchSampler(torch.utils.data.Sampler):
    """Batches whose images share an aspect-ratio group (landscape / portrait), as torchvision does.

    Fewer padded pixels per batch; the order within each group follows `sampler`.
    """

    def __init__(self, sampler, group_ids, batch_size):
        self.sampler, self.group_ids, self.batch_size = sampler, list(group_ids), batch_size

    def __iter__(self):
        buckets = {}
        for index in self.sampler:
            bucket = buckets.setdefault(self.group_ids[index], [])
            bucket.append(index)
            if len(bucket) == self.batch_size:
                yield list(bucket)
                bucket.clear()
        for bucket in buckets.values():  # keep leftovers: every image is seen each epoch
            if bucket:
                yield list(bucket)

    def __len__(self):
        counts = {}
        for index in self.sampler:
            counts[self.group_ids[index]] = counts.get(self.group_ids[index], 0) + 1
        return sum(-(-c // self.batch_size) for c in counts.values())

    def set_epoch(self, epoch):
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


def aspect_ratio_groups(dataset):
    """0 for landscape (w >= h), 1 for portrait, from the annotation's image sizes."""
    images = [dataset.images_by_id[i] for i in dataset.image_ids]
    return [0 if image.get("width", 1) >= image.get("height", 1) else 1 for image in images]


def detection_loader(dataset, batch_size, train, workers=0, group_by_aspect_ratio=True,
                     seed=0, collate=collate_fn, group_ids=None):
    """A DataLoader over `dataset`, sharded across torchrun processes when there are several.

    `group_ids` (one per item): training batches hold items of one group only (e.g. one image
    size); default: a COCO dataset's aspect-ratio groups."""
    if get_world_size() > 1:
        sampler = DistributedSampler(dataset, shuffle=train, seed=seed)
    else:
        sampler = RandomSampler(dataset) if train else SequentialSampler(dataset)
    common = dict(num_workers=workers, collate_fn=collate, worker_init_fn=seed_worker,
                  persistent_workers=workers > 0)
    if train and group_ids is not None:
        return DataLoader(dataset, batch_sampler=GroupedBatchSampler(sampler, group_ids, batch_size),
                          **common)
    if train and group_by_aspect_ratio and hasattr(dataset, "images_by_id"):
        batches = GroupedBatchSampler(sampler, aspect_ratio_groups(dataset), batch_size)
        return DataLoader(dataset, batch_sampler=batches, **common)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **common)


def set_loader_epoch(loader, epoch):
    """Reshuffle a distributed loader's shards for `epoch`."""
    for owner in (loader.batch_sampler, loader.sampler):
        if hasattr(owner, "set_epoch"):
            owner.set_epoch(epoch)
            return
