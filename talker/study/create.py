"""``python -m talker.study create``: run folders -> a study folder of blind clips and its study.json.

Where the clips come from (every folder under ``runs`` with a metrics.json, as talker.reporting reads them):

- a driven video: a metrics.json whose ``source`` is a video file (the cross-driven videos of
  ``experiment=baselines``, ``<run>/cross/<setting>/<setting>.mp4``; any video scored with
  ``talker.evaluate frames=<video> tag.method=... tag.setting=...``). Its clip is the ``setting`` tag.
- a self-driven run: a run folder with ``renders/`` and the dataset it was scored on; its held-out
  renders become a video with the dataset's audio for those frames. Its clip is ``self_driven``.

The method of a clip is the run's ``method`` tag, else its ``system``, else its ``arm`` (config
choices), else the folder name. Every clip is re-encoded (H.264 + AAC, the first ``seconds``,
metadata stripped, named by a random blind id), so neither its name nor its container says what
made it; ``link=true`` links the original files instead (no trimming, metadata kept).

Attention checks: ``ground_truth`` (a dataset's held-out frames with their audio, or any video) and
``broken`` (a copy of one clip with its audio 0.8 s late and its picture pixelated 8x): raters whose
mean score on the first is below ``attention.ground_truth.min``, or on the second above
``attention.broken.max``, are excluded from the results.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from talker.data.layout import read_transforms
from talker.reporting import ReportError, read_run
from talker.study.design import (
    MEDIA_DIR,
    STUDY_FILE,
    TABLE3_CRITERIA,
    Criterion,
    Item,
    Study,
    StudyError,
    check_study,
)
from talker.utils.io import write_json
from talker.utils.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, MediaError, list_frames

METRICS_FILE = "metrics.json"
SELF_DRIVEN = "self_driven"
GROUND_TRUTH_CLIP = "ground_truth"
FPS = 25  # the dataset layout's frame rate
BROKEN_AUDIO_DELAY_S = 0.8
BROKEN_PIXELATION = 8
DEFAULT_ATTENTION = {"ground_truth": {"min": 3.0}, "broken": {"max": 2.0}}


@dataclass(frozen=True)
class Source:
    """A method's clip before blinding: a video file, or frames with a stretch of a wav to mux in."""

    method: str
    clip: str
    video: Path | None = None
    frames: tuple[Path, ...] = ()
    audio: tuple[Path, float, float] | None = None  # wav, start and end in seconds
    origin: str = ""

    def describe(self) -> str:
        return self.origin or str(self.video)


def method_of(run: dict, folder: Path) -> str:
    for key in ("method", "system", "arm"):
        if run.get(key):
            return str(run[key])
    return folder.name


def _held_out_audio(dataset: Path, split: str = "val") -> tuple[Path, float, float]:
    """The dataset's aud.wav and the time span of its held-out frames (aud_id / 25 s)."""
    aud_ids = [int(f["aud_id"]) for f in read_transforms(dataset, split)["frames"]]
    return dataset / "aud.wav", min(aud_ids) / FPS, (max(aud_ids) + 1) / FPS


def discover(roots: list[Path]) -> tuple[list[Source], list[Path]]:
    """Every driven video and self-driven run under ``roots``, and the datasets the runs were scored on."""
    sources, datasets = [], []
    for root in roots:
        if not root.is_dir():
            raise StudyError(f"runs={root}: no such folder")
        for metrics in sorted(root.rglob(METRICS_FILE)):
            folder = metrics.parent
            if any(part.startswith(".") for part in folder.relative_to(root).parts):
                continue
            try:
                run, provenance = read_run(folder), json.loads(metrics.read_text())
            except (ReportError, json.JSONDecodeError) as exc:
                raise StudyError(f"{metrics}: unreadable ({exc})") from exc
            source = Path(str(provenance.get("source") or ""))
            method = method_of(run, folder)
            if source.suffix.lower() in VIDEO_SUFFIXES:
                if not source.is_absolute():
                    source = folder / source
                if not source.is_file():
                    raise StudyError(f"{metrics}: its video {source} is missing")
                sources.append(Source(method, str(run.get("setting") or folder.name), video=source))
            elif (folder / "renders").is_dir() and provenance.get("dataset"):
                dataset = Path(provenance["dataset"])
                frames = tuple(path for _, path in list_frames(folder / "renders"))
                sources.append(Source(method, SELF_DRIVEN, frames=frames, audio=_held_out_audio(dataset), origin=str(folder / "renders")))
                datasets.append(dataset)
    return sources, list(dict.fromkeys(datasets))


def _ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-y", "-v", "error", *args], capture_output=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise MediaError(f"ffmpeg failed on {args[args.index('-i') + 1] if '-i' in args else args}: {tail[0]}")


def encoding(video_filter: str = "") -> list[str]:
    """ffmpeg output options of every study clip: H.264 (even sizes, yuv420p) + AAC in an mp4 that starts
    playing before it is fully loaded; no metadata (titles, paths, creation times) and ffmpeg's bit-exact
    mode, so the container says nothing about where a clip came from. ``video_filter`` runs first."""
    filters = ",".join(f for f in (video_filter, "pad=ceil(iw/2)*2:ceil(ih/2)*2") if f)
    return ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-vf", filters,
            "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart"]


def _frames_to_video(source: Source, out: Path, seconds: float | None) -> None:
    """A frame folder (renders/, gt_imgs/) at 25 fps with its stretch of the dataset's audio."""
    frames = list(source.frames)
    wav, start, end = source.audio
    if seconds is not None:
        frames, end = frames[: round(seconds * FPS)], min(end, start + seconds)
    suffixes = {path.suffix.lower() for path in frames}
    if len(suffixes) != 1:
        raise StudyError(f"{source.describe()}: frames of mixed formats {sorted(suffixes)}")
    suffix = suffixes.pop()
    with tempfile.TemporaryDirectory() as tmp:
        for k, path in enumerate(frames):  # ffmpeg's image2 demuxer wants consecutive numbers
            (Path(tmp) / f"{k:06d}{suffix}").symlink_to(path.resolve())
        _ffmpeg("-framerate", str(FPS), "-i", f"{tmp}/%06d{suffix}", "-ss", f"{start:.3f}", "-to", f"{end:.3f}", "-i", str(wav),
                "-map", "0:v", "-map", "1:a", "-shortest", *encoding(), str(out))


def encode_clip(source: Source, out: Path, seconds: float | None) -> None:
    """Re-encode one clip to ``out`` (see :func:`encoding`), cut to its first ``seconds``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if source.frames:
        _frames_to_video(source, out, seconds)
    else:
        _ffmpeg("-i", str(source.video), *(["-t", f"{seconds:.3f}"] if seconds else []), *encoding(), str(out))


def break_clip(clip: Path, out: Path) -> None:
    """A deliberately broken copy: audio late by BROKEN_AUDIO_DELAY_S, picture pixelated BROKEN_PIXELATION x."""
    k = BROKEN_PIXELATION
    pixelate = f"scale=iw/{k}:ih/{k},scale=iw*{k}:ih*{k}:flags=neighbor"
    _ffmpeg("-i", str(clip), "-itsoffset", f"{BROKEN_AUDIO_DELAY_S}", "-i", str(clip), "-map", "0:v", "-map", "1:a",
            "-shortest", *encoding(pixelate), str(out))


def ground_truth_source(reference: Path) -> Source:
    """A dataset folder (its held-out frames and their audio) or a video file."""
    if reference.is_dir():
        try:
            audio = _held_out_audio(reference)
            ids = [str(f["img_id"]) for f in read_transforms(reference, "val")["frames"]]
        except ValueError as exc:
            raise StudyError(f"ground_truth={reference}: {exc}") from exc
        folder = reference / "gt_imgs"
        by_stem = {p.stem: p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES} if folder.is_dir() else {}
        missing = [i for i in ids if i not in by_stem]
        if missing:
            raise StudyError(f"ground_truth={reference}: {folder} lacks held-out frame {missing[0]}")
        return Source("", GROUND_TRUTH_CLIP, frames=tuple(by_stem[i] for i in ids), audio=audio, origin=str(reference))
    if reference.suffix.lower() in VIDEO_SUFFIXES and reference.is_file():
        return Source("", GROUND_TRUTH_CLIP, video=reference)
    raise StudyError(f"ground_truth={reference}: not a dataset folder or a video file")


def create_study(
    runs: list[str | Path],
    out: str | Path,
    clips: list[str] | None = None,
    methods: list[str] | None = None,
    criteria: list[str] | None = None,
    seconds: float | None = 8.0,
    ground_truth: str | Path | None = None,
    broken: bool = True,
    attention: dict[str, dict[str, float]] | None = None,
    link: bool = False,
    seed: int = 0,
    title: str = "Which talking head is better?",
) -> Study:
    """Build ``out``: media/<blind id>.mp4 and study.json. ``out`` must not hold a study already."""
    out = Path(out)
    if (out / STUDY_FILE).exists():
        raise StudyError(f"out={out}: holds a study already (its ratings would no longer match); choose another folder")
    known = {c.key: c for c in TABLE3_CRITERIA}
    unknown = [c for c in criteria or [] if c not in known]
    if unknown:
        raise StudyError(f"criteria={','.join(criteria)}: unknown {unknown}; choose from {', '.join(known)}")
    chosen: tuple[Criterion, ...] = tuple(known[c] for c in criteria) if criteria else TABLE3_CRITERIA
    sources, datasets = discover([Path(r) for r in runs])
    if clips:
        sources = [s for s in sources if s.clip in clips]
    if methods:
        sources = [s for s in sources if s.method in methods]
    if not sources:
        raise StudyError(f"runs={','.join(map(str, runs))}: no driven videos or self-driven renders found" + (f" for clips={clips}" if clips else ""))
    duplicates = {(s.method, s.clip) for s in sources if sum((t.method, t.clip) == (s.method, s.clip) for t in sources) > 1}
    if duplicates:
        first = min(duplicates)
        where = [s.describe() for s in sources if (s.method, s.clip) == first]
        raise StudyError(f"method {first[0]!r} has {len(where)} clips for {first[1]!r} ({', '.join(where)}); pass methods= or clips=")
    if out.exists() and any(out.iterdir()):
        raise StudyError(f"out={out}: not empty; choose a new folder")
    reference = ground_truth_source(Path(ground_truth)) if ground_truth else (ground_truth_source(datasets[0]) if datasets else None)
    building = out.with_name(f".{out.name}.building")
    shutil.rmtree(building, ignore_errors=True)
    try:
        items = [_add(building, "method", source, seconds, link) for source in sorted(sources, key=lambda s: (s.clip, s.method))]
        if reference is not None:
            items.append(_add(building, "ground_truth", reference, seconds, link=False))
        if broken:
            base = secrets.SystemRandom().choice(items[: len(sources)])
            items.append(_add_broken(building, base, seconds if link else None))
        items.sort(key=lambda i: i.id)  # the file order says nothing either
        study = Study(out, title, chosen, tuple(items), seed, None if link else seconds, attention or DEFAULT_ATTENTION)
        check_study(study, out / STUDY_FILE)
        write_json(building / STUDY_FILE, study.to_json())
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        building.replace(out)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return study


def _add(folder: Path, kind: str, source: Source, seconds: float | None, link: bool) -> Item:
    """Place one clip under a new blind id: re-encoded (or linked, for ``link`` and a video source)."""
    blind = secrets.token_hex(8)
    target = folder / MEDIA_DIR / f"{blind}.mp4"
    if link and source.video is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source.video.resolve())
    else:
        encode_clip(source, target, seconds)
    return Item(blind, kind, source.clip, f"{MEDIA_DIR}/{blind}.mp4", source.method or None, source.describe())


def _add_broken(folder: Path, base: Item, trim: float | None) -> Item:
    """The broken attention check, made from ``base``'s placed clip (trimmed first when it was linked untrimmed)."""
    blind = secrets.token_hex(8)
    original = folder / base.file
    if trim is not None:
        cut = folder / MEDIA_DIR / f".{blind}.cut.mp4"
        encode_clip(Source("", base.clip, video=original.resolve()), cut, trim)
        original = cut
    break_clip(original, folder / MEDIA_DIR / f"{blind}.mp4")
    if trim is not None:
        original.unlink()
    return Item(blind, "broken", base.clip, f"{MEDIA_DIR}/{blind}.mp4", None, f"broken copy of {base.source}")


__all__ = ["Source", "break_clip", "create_study", "discover", "encode_clip"]
