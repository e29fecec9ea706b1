"""Audio-visual synchronisation: SyncNet confidence and minimum distance (Chung & Zisserman 2016).

The network is SyncNet as released with syncnet_python (``syncnet_v2.model``), which the talking-head
papers' "Sync" / LSE-C / LSE-D numbers come from; its layers (and parameter names) are reproduced in
:class:`SyncNet` so that the released weights load unchanged. The procedure follows
syncnet_python's ``SyncNetInstance.evaluate``:

- video at 25 fps: each frame's face is cropped as in its ``crop_video`` (box centre and size
  median-filtered over 13 frames, crop scale 0.4, padding value 110) and resized to 224 x 224,
  BGR, values 0-255; the lip stream sees 5 consecutive crops;
- audio at 16 kHz, int16 scale: 13 MFCCs per 10 ms (python_speech_features, the package
  syncnet_python uses; no torchaudio), 20 MFCC frames (0.2 s) per 5 video frames;
- distances between each video window and the audio windows shifted by -15 ... +15 frames;
  averaged over frames; ``sync_dist`` (LSE-D) is the minimum over shifts, ``sync_conf`` (LSE-C)
  the median minus the minimum, ``sync_offset`` the best shift in frames.

One deliberate difference: syncnet_python finds the face box with the S3FD detector; here the box
is the bounding box of the frame's 68 landmarks (the dataset's, or MediaPipe's when a frame has
none), so that no second face detector is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import medfilt, resample_poly
from torch import Tensor, nn

from talker.metrics.base import EvalContext, EvalFrame, Metric, MetricUnavailable, resolve_device
from talker.metrics.detector import FaceLandmarks68
from talker.metrics.weights import find_weights
from talker.weights import SYNCNET_V2

SYNCNET_FILE = SYNCNET_V2.file_name
SAMPLE_RATE = 16000
FPS = 25
CROP = 224
WINDOW = 5  # video frames per lip-stream input
MFCC_PER_FRAME = 4  # 100 MFCC frames per second / 25 video frames per second


def _conv_bn_relu(conv: nn.Module, bn: nn.Module) -> list[nn.Module]:
    return [conv, bn, nn.ReLU(inplace=True)]


class SyncNet(nn.Module):
    """SyncNet's audio and lip streams; ``forward_aud([B, 1, 13, 20])`` and ``forward_lip([B, 3, 5, 224, 224])``
    each give ``[B, embed_dim]`` embeddings compared by Euclidean distance."""

    def __init__(self, embed_dim: int = 1024) -> None:
        super().__init__()
        c2, b2, c3, b3 = nn.Conv2d, nn.BatchNorm2d, nn.Conv3d, nn.BatchNorm3d
        # Module order fixes the parameter names of the released checkpoint (netcnnaud.0.weight, ...).
        self.netcnnaud = nn.Sequential(
            *_conv_bn_relu(c2(1, 64, 3, padding=1), b2(64)), nn.MaxPool2d(1, 1),
            *_conv_bn_relu(c2(64, 192, 3, padding=1), b2(192)), nn.MaxPool2d(3, (1, 2)),
            *_conv_bn_relu(c2(192, 384, 3, padding=1), b2(384)),
            *_conv_bn_relu(c2(384, 256, 3, padding=1), b2(256)),
            *_conv_bn_relu(c2(256, 256, 3, padding=1), b2(256)), nn.MaxPool2d(3, 2),
            c2(256, 512, (5, 4)), b2(512), nn.ReLU(),
        )
        self.netfcaud = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embed_dim))
        self.netfclip = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embed_dim))
        self.netcnnlip = nn.Sequential(
            *_conv_bn_relu(c3(3, 96, (5, 7, 7), stride=(1, 2, 2)), b3(96)), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_conv_bn_relu(c3(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), b3(256)),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), padding=(0, 1, 1)),
            *_conv_bn_relu(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), b3(256)),
            *_conv_bn_relu(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), b3(256)),
            *_conv_bn_relu(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), b3(256)), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_conv_bn_relu(c3(256, 512, (1, 6, 6)), b3(512)),
        )

    def forward_aud(self, mfcc: Tensor) -> Tensor:
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, clips: Tensor) -> Tensor:
        return self.netfclip(self.netcnnlip(clips).flatten(1))


def load_syncnet(weights: str | None = None) -> SyncNet:
    path = find_weights(SYNCNET_V2, weights)
    net = SyncNet()
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # a corrupt or wrong file: say so instead of crashing the evaluation
        raise MetricUnavailable(f"SyncNet weights at {path} do not load: {exc}") from exc
    return net.eval()


def mfcc(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``[13, T]`` MFCCs at 100 Hz of a mono waveform in [-1, 1], computed on its int16 values as SyncNet was trained."""
    try:
        import python_speech_features
    except ImportError as exc:
        raise MetricUnavailable(f"python_speech_features does not import ({exc}); pip install 'talker[metrics]'") from exc
    pcm = np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    return python_speech_features.mfcc(pcm, sample_rate).T


def to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if sample_rate == SAMPLE_RATE:
        return audio
    g = np.gcd(int(sample_rate), SAMPLE_RATE)
    return resample_poly(audio, SAMPLE_RATE // g, int(sample_rate) // g)


def face_boxes(landmarks: np.ndarray) -> np.ndarray:
    """``[T, 68, 2]`` landmarks -> ``[T, 3]`` smoothed (x centre, y centre, half size), as syncnet_python's tracks."""
    lo, hi = landmarks.min(axis=1), landmarks.max(axis=1)
    boxes = np.stack([(lo[:, 0] + hi[:, 0]) / 2, (lo[:, 1] + hi[:, 1]) / 2, (hi - lo).max(axis=1) / 2], axis=1)
    kernel = min(13, len(boxes) - (1 - len(boxes) % 2))  # odd, at most the sequence length
    if kernel >= 3:
        boxes = np.stack([medfilt(boxes[:, k], kernel_size=kernel) for k in range(3)], axis=1)
    return boxes


def face_crop(image: np.ndarray, box: np.ndarray, crop_scale: float = 0.4) -> np.ndarray:
    """syncnet_python's face crop of a uint8 ``[H, W, 3]`` frame -> ``[224, 224, 3]`` uint8 (same channel order)."""
    x, y, bs = (float(v) for v in box)
    pad = int(bs * (1 + 2 * crop_scale))
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=110)
    my, mx = y + pad, x + pad
    face = padded[int(my - bs) : int(my + bs * (1 + 2 * crop_scale)), int(mx - bs * (1 + crop_scale)) : int(mx + bs * (1 + crop_scale))]
    resized = F.interpolate(
        torch.from_numpy(face).permute(2, 0, 1).unsqueeze(0).float(), size=(CROP, CROP), mode="bilinear", align_corners=False
    )
    return resized.round().clamp(0, 255).byte().squeeze(0).permute(1, 2, 0).numpy()


def sync_distances(lip: Tensor, aud: Tensor, vshift: int = 15) -> Tensor:
    """``[T, 2 vshift + 1]``: distance of video window t to audio window t + s for s = -vshift ... vshift (zero-padded)."""
    padded = F.pad(aud, (0, 0, vshift, vshift))
    return torch.stack(
        [F.pairwise_distance(lip[[t]].repeat(2 * vshift + 1, 1), padded[t : t + 2 * vshift + 1]) for t in range(len(lip))]
    )


def sync_scores(dists: Tensor, vshift: int = 15) -> dict[str, float]:
    mean = dists.mean(dim=0)
    minimum, best = torch.min(mean, dim=0)
    return {
        "sync_conf": float(torch.median(mean) - minimum),
        "sync_dist": float(minimum),
        "sync_offset": float(vshift - int(best)),
    }


@torch.no_grad()
def syncnet_embeddings(
    net: SyncNet, crops: np.ndarray, audio: np.ndarray, batch_size: int = 20, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Lip and audio embeddings of every 5-frame window of ``crops [T, 224, 224, 3]`` (BGR) and 16 kHz ``audio``."""
    device = device or torch.device("cpu")
    mfccs = mfcc(audio)
    length = min(len(crops), len(audio) // (SAMPLE_RATE // FPS))
    last = length - WINDOW
    video = torch.from_numpy(crops).float().permute(3, 0, 1, 2).unsqueeze(0)  # [1, 3, T, 224, 224]
    audio = torch.from_numpy(mfccs).float()[None, None]  # [1, 1, 13, 4 T]
    lip, aud = [], []
    for start in range(0, last, batch_size):
        frames = range(start, min(last, start + batch_size))
        clips = torch.cat([video[:, :, t : t + WINDOW] for t in frames])
        windows = torch.cat([audio[..., t * MFCC_PER_FRAME : t * MFCC_PER_FRAME + 4 * WINDOW] for t in frames])
        lip.append(net.forward_lip(clips.to(device)).cpu())
        aud.append(net.forward_aud(windows.to(device)).cpu())
    return torch.cat(lip), torch.cat(aud)


class Sync(Metric):
    """SyncNet confidence (``sync_conf``, the papers' "Sync"), minimum distance (``sync_dist``) and offset.

    Scores the rendered frames against the sequence's audio; needs no ground-truth frames, so it
    also scores cross-driven renders. Frames must be consecutive on the audio timeline.

    Args:
        weights: ``syncnet_v2.model``; None: ``$TORCH_HOME/hub/checkpoints/syncnet_v2.model`` (downloaded
            on first use unless offline).
        landmarker: Face Landmarker ``.task`` bundle, used for frames that carry no landmarks.
        vshift: largest audio shift searched, in frames (syncnet_python: 15).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    """

    name = "sync"
    needs_reference = False

    def __init__(self, weights: str | None = None, landmarker: str | Path | None = None, vshift: int = 15, device: str = "auto") -> None:
        self.weights, self.landmarker, self.vshift = weights, landmarker, vshift
        self.device = resolve_device(device)
        self.net: SyncNet | None = None
        self.detector: FaceLandmarks68 | None = None
        self.reset()

    def reset(self) -> None:
        self.frames: list[np.ndarray] = []
        self.landmarks: list[np.ndarray] = []
        self.times: list[int] = []
        self.context: EvalContext | None = None

    def prepare(self, context: EvalContext) -> None:
        if context.fps != FPS:
            raise MetricUnavailable(f"SyncNet scores {FPS} fps video, these frames are at {context.fps} fps")
        if context.audio is None:
            raise MetricUnavailable("no audio for this sequence (a dataset's aud.wav, or audio=<wav> for external frames)")
        if self.net is None:
            self.net = load_syncnet(self.weights).to(self.device)
        self.context = context

    def update(self, frame: EvalFrame) -> dict[str, float]:
        landmarks = frame.landmarks
        if landmarks is None:
            if self.detector is None:
                if self.landmarker is None:
                    raise MetricUnavailable("frames carry no landmarks and no face landmarker is configured")
                self.detector = FaceLandmarks68(self.landmarker)
            landmarks = self.detector.detect(frame.pred)
            if landmarks is None:
                raise MetricUnavailable(f"no face found in frame {frame.frame_id}")
        image = np.clip(np.round(frame.pred.detach().cpu().float().numpy() * 255.0), 0, 255).astype(np.uint8)
        self.frames.append(image[..., ::-1])  # BGR, as syncnet_python reads frames with OpenCV
        self.landmarks.append(landmarks.detach().cpu().numpy())
        self.times.append(len(self.times) if frame.time_index is None else int(frame.time_index))
        return {}

    def compute(self) -> dict[str, float]:
        if len(self.frames) <= WINDOW:
            raise MetricUnavailable(f"needs more than {WINDOW} frames, got {len(self.frames)}")
        times = np.asarray(self.times)
        if np.any(np.diff(times) != 1):
            raise MetricUnavailable("frames are not consecutive on the audio timeline")
        ctx = self.context
        start, stop = times[0] / ctx.fps, (times[-1] + 1) / ctx.fps
        audio = to_16k(ctx.audio[int(round(start * ctx.sample_rate)) : int(round(stop * ctx.sample_rate))], ctx.sample_rate)
        if len(audio) < SAMPLE_RATE * (WINDOW + 1) / FPS:
            raise MetricUnavailable(f"the audio covers only {len(audio) / SAMPLE_RATE:.2f} s of the {len(times)} frames")
        boxes = face_boxes(np.stack(self.landmarks))
        crops = np.stack([face_crop(f, b) for f, b in zip(self.frames, boxes)])
        lip, aud = syncnet_embeddings(self.net, crops, audio, device=self.device)
        return sync_scores(sync_distances(lip, aud, self.vshift), self.vshift)
