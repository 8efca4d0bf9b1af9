"""Drawing detections (masks, boxes, class names, scores) and side-by-side panels with OpenCV."""
import cv2
import numpy as np

_PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                     [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 190]],
                    np.float32)


def draw_instances(image, boxes, names, scores=None, masks=None, alpha=0.45, min_side=384):
    """Overlay instances on an HxWx3 uint8 RGB image; masks are HxW bool/0-1 arrays.

    Images smaller than `min_side` are enlarged (nearest neighbour) first so labels stay legible.
    """
    factor = max(1, int(np.ceil(min_side / min(image.shape[:2]))))
    image = upscale_for_viewing(image, min_side)
    boxes = [np.asarray(b, np.float32) * factor for b in boxes]
    canvas = image.astype(np.float32).copy()
    for i in range(len(boxes)):
        colour = _PALETTE[i % len(_PALETTE)]
        if masks is not None and len(masks) > i:
            m = np.asarray(masks[i], np.float32)
            if factor > 1:
                m = cv2.resize(m, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
            m = m > 0.5
            canvas[m] = (1 - alpha) * canvas[m] + alpha * colour
    canvas = np.clip(canvas, 0, 255).astype(np.uint8)
    scale = max(0.3, min(image.shape[:2]) / 600)
    for i, box in enumerate(boxes):
        colour = tuple(int(c) for c in _PALETTE[i % len(_PALETTE)])
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, max(1, int(2 * scale)))
        label = names[i] if scores is None else f"{names[i]} {float(scores[i]):.2f}"
        cv2.putText(canvas, label, (x0 + 1, max(10, y0 - 2)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    colour, 1, cv2.LINE_AA)
    return canvas


def draw_detections(image, detections, names, score_threshold=0.0):
    """Overlay a detector's output dict (boxes, labels, scores, optional N x 1 x H x W masks;
    tensors or arrays) on an HxWx3 uint8 image, keeping scores >= `score_threshold`."""
    scores = np.asarray(detections["scores"], np.float32)
    keep = scores >= score_threshold
    masks = np.asarray(detections["masks"])[keep][:, 0] if "masks" in detections else None
    return draw_instances(image, np.asarray(detections["boxes"], np.float32)[keep],
                          [names[int(label)] for label in np.asarray(detections["labels"])[keep]],
                          scores[keep], masks)


def side_by_side(panels, titles, gap=4):
    """Panels (same height) in a row with a title strip above each."""
    height = max(p.shape[0] for p in panels)
    strip = max(14, height // 12)
    columns = []
    for panel, title in zip(panels, titles):
        column = np.full((height + strip, panel.shape[1], 3), 255, np.uint8)
        column[strip:strip + panel.shape[0]] = panel
        cv2.putText(column, title, (2, strip - 4), cv2.FONT_HERSHEY_SIMPLEX, strip / 30, (0, 0, 0),
                    1, cv2.LINE_AA)
        columns.append(column)
        columns.append(np.full((height + strip, gap, 3), 255, np.uint8))
    return np.concatenate(columns[:-1], axis=1)


def upscale_for_viewing(image, min_side=384):
    """Nearest-neighbour enlargement of tiny images so overlays stay legible."""
    factor = max(1, int(np.ceil(min_side / min(image.shape[:2]))))
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST) if factor > 1 else image
