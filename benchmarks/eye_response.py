"""Does a trained head's eyes follow its eye signal? The probes behind docs/lokitalk.md's eye-gap findings.

    python benchmarks/eye_response.py <run folder> [checkpoint]

Prints, for a head with an eye signal (``TalkingHead.drives_eyes``):

- the clip's eye ratios: how many training and held-out frames blink (ratio below 0.9 x the clip's
  median), how many held-out frames differ in eye ratio from their mouth-gap partner (``other_frame``),
  and the ratio the eye gap renders them under (``other_eye_ratio``);
- the first held-out frame's eyes box rendered with the clip's widest-open and most closed eye ratio:
  PSNR between the two renders and the largest difference of each offset the strategy reports
  (``dx_face``, ``dx_torso``; O+D's ``dx``) over the box's samples;
- for a deformation strategy (LokiTalk): the share of its face field's last hidden ReLUs active on the
  frame's face surface points (0: the field is a constant offset, its last layer's bias), and with
  signal-region attention each signal's score, weight-averaged per opaque ray, in the eye strip
  (points 36-47 plus 3 px), in the mouth box and on the rest of the face box.

Renders about 1.5 eyes boxes and one face box: a few seconds per run at 128 px on a CPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from talker.config import instantiate
from talker.data.landmarks import BLINK, eye_strip, eyes_box, face_box, mouth_box
from talker.evaluation import clip_eye_ratios, other_eye_ratio, other_frame, render_box
from talker.fields.inputs import EYE, eye_ratio
from talker.metrics import psnr
from talker.runs import RunFolder


def box_rays(item: dict, box: tuple[int, int, int, int]) -> torch.Tensor:
    y0, y1, x0, x1 = box
    ys, xs = torch.meshgrid(torch.arange(y0, y1), torch.arange(x0, x1), indexing="ij")
    return (ys * item["image"].shape[1] + xs).reshape(-1)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a talker run folder (config.yaml, checkpoints/last.ckpt)")
    parser.add_argument("checkpoint", type=Path, nargs="?", help="default: <run>/checkpoints/last.ckpt")
    args = parser.parse_args()
    run = RunFolder(args.run)
    head = run.load_module(checkpoint=run.checkpoint(args.checkpoint)).head
    if not head.drives_eyes:
        raise SystemExit(f"{args.run}: the head has no eye signal (no part of it reads the eye ratio)")
    datamodule = instantiate(run.config().data, "data")
    datamodule.prepare_data()
    datamodule.setup("validate")
    frames = datamodule.eval_frames()

    def ratios_of(split) -> torch.Tensor:
        return torch.cat([eye_ratio(datamodule.conditions.of_split(split, i)) for i in range(len(split))])

    train, held_out, clip = (
        ratios_of(datamodule.train_split),
        ratios_of(frames.split),
        clip_eye_ratios(frames.split),
    )
    threshold = BLINK * float(clip.median())
    n = len(held_out)
    differ = sum(
        abs(float(held_out[i] - held_out[other_frame(i, n)])) > 1e-6
        for i in range(n)
        if other_frame(i, n) is not None
    )
    swaps = [float((other_eye_ratio(r, clip) - r).abs()) for r in held_out]
    print(
        f"eye ratio: clip {float(clip.min()):.4f}-{float(clip.max()):.4f} (median {float(clip.median()):.4f}); blinking "
        f"(< {BLINK} x median): {int((train < threshold).sum())}/{len(train)} training, {int((held_out < threshold).sum())}/{n} "
        f"held-out frames; held-out frames whose mouth-gap partner has another eye ratio: {differ}/{n}; eye gap's swap "
        f"|delta| {min(swaps):.4f}-{max(swaps):.4f}"
    )

    item = frames[0]
    height, width = item["image"].shape[:2]
    box = eyes_box(item["lms"], height, width)
    flat = box_rays(item, box)
    widest, closed = clip.max().reshape(1), clip.min().reshape(1)
    renders, values = {}, {}
    for name, ratio in (("open", widest), ("closed", closed)):
        cond = {**item["cond"], EYE: ratio}
        renders[name] = render_box(head, item, box, cond)
        values[name] = head.render(
            item["rays_o"][flat], item["rays_d"][flat], item["background"][flat], cond
        ).point_values
    offsets = ", ".join(
        f"max |{k} difference| {(values['open'][k] - values['closed'][k]).abs().max():.2e} (max |{k}| {values['open'][k].abs().max():.2e})"
        for k in getattr(head.conditioning, "deformations", ())
    )
    print(
        f"held-out frame {item['img_id']}, eyes box {box}: eye ratio {float(widest):.3f} vs {float(closed):.3f}: "
        f"{float(psnr(renders['open'], renders['closed'])):.2f} dB between the renders, at most "
        f"{float((renders['open'] - renders['closed']).abs().max()) * 255:.0f}/255 apart"
        + (f"; {offsets}" if offsets else "")
    )

    fusion = getattr(head.conditioning, "fusion", None)
    if fusion is None or getattr(fusion, "face", None) is None:
        return
    face = face_box(item["lms"], height, width)
    flat = box_rays(item, face)
    out = head.render(item["rays_o"][flat], item["rays_d"][flat], item["background"][flat], item["cond"])
    opaque = out.opacity > 0.5
    surface = (item["rays_o"][flat] + item["rays_d"][flat] * out.depth[:, None])[opaque]
    signals = fusion.split(head.conditioning.encode(item["cond"]))
    pos = fusion.grid(surface)
    if len(fusion.attention):  # CascadedDeformation: the face signals through their attention
        features = [fusion.attention[name](pos, signals[name])[0] for name in ("audio", "eye")]
    else:  # UnifiedDeformation: every signal concatenated
        features = [torch.cat(list(signals.values())).to(pos.dtype).expand(len(pos), -1)]
    hidden = fusion.face.hidden(torch.cat([pos, *features], dim=-1))
    print(
        f"face field on {len(surface)} face surface points: {float((hidden > 0).float().mean()):.3f} of its last hidden "
        f"ReLU activations on, {float((hidden > 0).any(0).float().mean()):.3f} of its units on somewhere; |last bias| "
        f"{float(fusion.face.last.bias.norm()):.4f}; |F| per signal "
        + ", ".join(f"{k} {float(v.norm()):.3f}" for k, v in signals.items())
    )
    scores = [k for k in out.point_values if k.startswith("attention_")]
    if scores:
        ys, xs = flat // width, flat % width

        def inside(box: tuple[int, int, int, int]) -> torch.Tensor:
            y0, y1, x0, x1 = box
            return (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)

        strip, mouth = inside(eye_strip(item["lms"], height, width)), inside(mouth_box(item["lms"], height, width))
        weights = out.weights
        parts = []
        for key in scores:
            per_ray = (weights * out.point_values[key]).sum(-1) / weights.sum(-1).clamp_min(1e-6)
            parts.append(" / ".join(f"{float(per_ray[region & opaque].mean()):.4f}" for region in (strip, mouth, ~strip & ~mouth)))
            parts[-1] = f"{key} {parts[-1]}"
        print("attention per opaque ray, eye strip / mouth box / rest of the face box: " + ", ".join(parts))


if __name__ == "__main__":
    main()
